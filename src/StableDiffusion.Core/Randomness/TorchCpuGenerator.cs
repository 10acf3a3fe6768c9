using StableDiffusion.Schedulers;

namespace StableDiffusion.Randomness;

/// <summary>
/// Reproduces torch's CPU generator: <c>TorchCpuGenerator(seed)</c> draws what
/// <c>torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed))</c> draws, call after call.
/// This is the pipelines' default, so a seed here gives the image that seed gives in diffusers.
/// </summary>
/// <remarks>
/// torch draws single-precision noise of 16 or more elements in blocks of 16 (Box-Muller on 24-bit uniforms), and fewer
/// elements one at a time in double precision; both paths are reproduced. torch's own vectorised math differs from
/// scalar math by an ulp or two, so values agree to about 2e-6, not bit for bit. Not thread-safe.
/// </remarks>
public sealed class TorchCpuGenerator : INoiseGenerator
{
    private readonly MersenneTwister _engine;
    private double? _nextDoubleNormal;

    /// <summary>Creates the generator as <c>torch.Generator("cpu").manual_seed(seed)</c> does.</summary>
    /// <param name="seed">The seed (torch uses its low 32 bits to seed the engine).</param>
    public TorchCpuGenerator(ulong seed)
    {
        Seed = seed;
        _engine = new MersenneTwister(unchecked((uint)seed));
    }

    /// <summary>The seed this generator was created with.</summary>
    public ulong Seed { get; }

    /// <inheritdoc />
    public void FillStandardNormal(Span<float> destination)
    {
        if (destination.Length < 16)
        {
            for (int i = 0; i < destination.Length; i++)
            {
                destination[i] = (float)NextDoubleNormal();
            }

            return;
        }

        for (int i = 0; i < destination.Length; i++)
        {
            destination[i] = NextUniform24();
        }

        for (int i = 0; i + 16 <= destination.Length; i += 16)
        {
            BoxMuller16(destination.Slice(i, 16));
        }

        if (destination.Length % 16 != 0)
        {
            // torch redraws the last 16 values from fresh uniforms, overwriting part of the previous block.
            Span<float> tail = destination[^16..];
            for (int i = 0; i < 16; i++)
            {
                tail[i] = NextUniform24();
            }

            BoxMuller16(tail);
        }
    }

    /// <inheritdoc />
    public void FillStandardNormal(Span<double> destination) => throw new NotSupportedException("Double-precision draws are not implemented yet.");

    /// <inheritdoc />
    public void FillStandardNormal(Span<Half> destination) => throw new NotSupportedException("Half-precision draws are not implemented yet.");

    private float NextUniform24() => (_engine.NextUInt32() & 0xFFFFFF) * (1.0f / (1 << 24));

    private static void BoxMuller16(Span<float> block)
    {
        for (int j = 0; j < 8; j++)
        {
            float u1 = 1 - block[j];
            float u2 = block[j + 8];
            float radius = MathF.Sqrt(-2 * MathF.Log(u1));
            float theta = 2.0f * MathF.PI * u2;
            block[j] = radius * MathF.Cos(theta);
            block[j + 8] = radius * MathF.Sin(theta);
        }
    }

    private double NextDoubleNormal()
    {
        if (_nextDoubleNormal is double cached)
        {
            _nextDoubleNormal = null;
            return cached;
        }

        double u1 = NextUniform53();
        double u2 = NextUniform53();
        double radius = Math.Sqrt(-2 * Math.Log(1 - u2));
        double theta = 2.0 * Math.PI * u1;
        _nextDoubleNormal = radius * Math.Sin(theta);
        return radius * Math.Cos(theta);
    }

    private double NextUniform53()
    {
        ulong hi = _engine.NextUInt32();
        ulong lo = _engine.NextUInt32();
        ulong bits = (hi << 32) | lo;
        return (bits & ((1UL << 53) - 1)) * (1.0 / (1UL << 53));
    }
}
