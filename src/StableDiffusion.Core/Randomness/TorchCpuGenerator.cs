using StableDiffusion.Schedulers;

namespace StableDiffusion.Randomness;

/// <summary>
/// Reproduces torch's CPU generator: <c>TorchCpuGenerator(seed)</c> draws what
/// <c>torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed), dtype=dtype)</c> draws, call after call.
/// This is the pipelines' default, so a seed here gives the image that seed gives in diffusers.
/// </summary>
/// <remarks>
/// <para>
/// torch seeds a 32-bit Mersenne Twister with the low 32 bits of the seed, so seeds that differ only above bit 31 draw the
/// same noise (in torch too). Draws of 16 or more elements are filled in blocks of 16 by Box-Muller on uniforms of the
/// draw's precision: 24 bits for single, 53 for double and 11 for half precision, which is why fp16 noise is a different
/// stream from fp32 noise rounded to half. Smaller draws take a double-precision Box-Muller one value at a time, caching
/// the second value of each pair for the next small draw, as torch does.
/// </para>
/// <para>
/// Double and half precision match torch exactly; single precision agrees to about 2e-6 because torch's vectorised
/// log/sin/cos differ from scalar math by an ulp or two. Not thread-safe: use one generator per generation.
/// </para>
/// </remarks>
public sealed class TorchCpuGenerator : INoiseGenerator
{
    private const int BlockSize = 16;

    // torch finishes every sample with `* std + mean` (std 1, mean 0): adding the mean turns a -0 into +0.
    private const float Mean = 0;

    private readonly MersenneTwister _engine;
    private double? _nextDoubleNormal;

    /// <summary>Creates the generator as <c>torch.Generator("cpu").manual_seed(seed)</c> does.</summary>
    /// <param name="seed">The seed: any value torch accepts, 0 to 2^64-1 (torch seeds the engine with its low 32 bits).</param>
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
        if (destination.Length < BlockSize)
        {
            for (int i = 0; i < destination.Length; i++)
            {
                destination[i] = (float)NextDoubleNormal();
            }

            return;
        }

        FillInBlocks<SingleBlocks, float>(destination);
    }

    /// <inheritdoc />
    public void FillStandardNormal(Span<double> destination)
    {
        if (destination.Length < BlockSize)
        {
            for (int i = 0; i < destination.Length; i++)
            {
                destination[i] = NextDoubleNormal();
            }

            return;
        }

        FillInBlocks<DoubleBlocks, double>(destination);
    }

    /// <inheritdoc />
    public void FillStandardNormal(Span<Half> destination)
    {
        if (destination.Length < BlockSize)
        {
            for (int i = 0; i < destination.Length; i++)
            {
                // torch casts the double sample to c10::Half, which converts through float.
                destination[i] = (Half)(float)NextDoubleNormal();
            }

            return;
        }

        FillInBlocks<HalfBlocks, Half>(destination);
    }

    private void FillInBlocks<TBlocks, T>(Span<T> destination)
        where TBlocks : IBoxMullerBlocks<T>
    {
        for (int i = 0; i < destination.Length; i++)
        {
            destination[i] = TBlocks.NextUniform(_engine);
        }

        for (int i = 0; i + BlockSize <= destination.Length; i += BlockSize)
        {
            TBlocks.Transform(destination.Slice(i, BlockSize));
        }

        if (destination.Length % BlockSize != 0)
        {
            // torch redraws the last 16 values from fresh uniforms, overwriting part of the previous block.
            Span<T> tail = destination[^BlockSize..];
            for (int i = 0; i < BlockSize; i++)
            {
                tail[i] = TBlocks.NextUniform(_engine);
            }

            TBlocks.Transform(tail);
        }
    }

    private double NextDoubleNormal()
    {
        if (_nextDoubleNormal is double cached)
        {
            _nextDoubleNormal = null;
            return cached;
        }

        double u1 = DoubleBlocks.NextUniform(_engine);
        double u2 = DoubleBlocks.NextUniform(_engine);

        // 1 - u2 is exact for a 53-bit uniform, so this equals torch's log1p(-u2) up to libm rounding.
        double radius = Math.Sqrt(-2 * Math.Log(1 - u2));
        double theta = 2.0 * Math.PI * u1;
        _nextDoubleNormal = (radius * Math.Sin(theta)) + Mean;
        return (radius * Math.Cos(theta)) + Mean;
    }

    /// <summary>One precision of torch's <c>normal_fill</c>: its uniform and its 16-value Box-Muller block.</summary>
    private interface IBoxMullerBlocks<T>
    {
        static abstract T NextUniform(MersenneTwister engine);

        static abstract void Transform(Span<T> block);
    }

    private readonly struct SingleBlocks : IBoxMullerBlocks<float>
    {
        public static float NextUniform(MersenneTwister engine) => (engine.NextUInt32() & 0xFFFFFF) * (1.0f / (1 << 24));

        public static void Transform(Span<float> block)
        {
            for (int j = 0; j < 8; j++)
            {
                float u1 = 1 - block[j];
                float u2 = block[j + 8];
                float radius = MathF.Sqrt(-2 * MathF.Log(u1));
                float theta = 2.0f * MathF.PI * u2;
                block[j] = (radius * MathF.Cos(theta)) + Mean;
                block[j + 8] = (radius * MathF.Sin(theta)) + Mean;
            }
        }
    }

    private readonly struct DoubleBlocks : IBoxMullerBlocks<double>
    {
        public static double NextUniform(MersenneTwister engine)
        {
            // torch's random64(): the first word is the high half.
            ulong high = engine.NextUInt32();
            ulong low = engine.NextUInt32();
            return (((high << 32) | low) & ((1UL << 53) - 1)) * (1.0 / (1UL << 53));
        }

        public static void Transform(Span<double> block)
        {
            for (int j = 0; j < 8; j++)
            {
                double u1 = 1 - block[j];
                double u2 = block[j + 8];
                double radius = Math.Sqrt(-2 * Math.Log(u1));
                double theta = 2.0 * Math.PI * u2;
                block[j] = (radius * Math.Cos(theta)) + Mean;
                block[j + 8] = (radius * Math.Sin(theta)) + Mean;
            }
        }
    }

    private readonly struct HalfBlocks : IBoxMullerBlocks<Half>
    {
        public static Half NextUniform(MersenneTwister engine) => (Half)((engine.NextUInt32() & 0x7FF) * (1.0f / (1 << 11)));

        public static void Transform(Span<Half> block)
        {
            // torch's normal_fill_16<Half> runs in c10::Half: every operation (log, sqrt, cos and sin included, through
            // c10's reduced-precision math overloads) computes in float and rounds its result to half; theta is computed
            // in double and rounded to half through float.
            for (int j = 0; j < 8; j++)
            {
                Half u1 = (Half)(1f - (float)block[j]);
                Half u2 = block[j + 8];
                Half log = (Half)MathF.Log((float)u1);
                Half radius = (Half)MathF.Sqrt((float)(Half)(-2f * (float)log));
                Half theta = (Half)(float)(2.0 * Math.PI * (double)u2);
                Half cos = (Half)MathF.Cos((float)theta);
                Half sin = (Half)MathF.Sin((float)theta);
                block[j] = (Half)((float)(Half)((float)radius * (float)cos) + Mean);
                block[j + 8] = (Half)((float)(Half)((float)radius * (float)sin) + Mean);
            }
        }
    }
}
