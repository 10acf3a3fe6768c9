using StableDiffusion.Schedulers;

namespace StableDiffusion.Randomness;

/// <summary>
/// Reproduces numpy's legacy generator: <c>NumpyRandomState(seed)</c> draws what <c>numpy.random.RandomState(seed).randn(...)</c>
/// draws, call after call. The diffusers ONNX pipelines (<c>OnnxStableDiffusionPipeline</c> and its img2img and inpaint
/// variants) take this generator, so use it to reproduce their images.
/// </summary>
/// <remarks>
/// numpy draws double-precision values with the polar (Marsaglia) method on 53-bit uniforms from MT19937 and keeps the
/// second value of each pair for the next draw; single and half precision are those doubles rounded, as the ONNX pipelines'
/// <c>.astype(dtype)</c> does. Values match numpy exactly. Not thread-safe: use one generator per generation.
/// </remarks>
public sealed class NumpyRandomState : INoiseGenerator
{
    private readonly MersenneTwister _engine;
    private double? _nextGauss;

    /// <summary>Creates the generator as <c>numpy.random.RandomState(seed)</c> does.</summary>
    /// <param name="seed">The seed: numpy accepts 0 to 2^32-1.</param>
    public NumpyRandomState(uint seed)
    {
        Seed = seed;
        _engine = new MersenneTwister(seed);
    }

    /// <summary>The seed this generator was created with.</summary>
    public uint Seed { get; }

    /// <inheritdoc />
    public void FillStandardNormal(Span<double> destination)
    {
        for (int i = 0; i < destination.Length; i++)
        {
            destination[i] = NextGauss();
        }
    }

    /// <inheritdoc />
    public void FillStandardNormal(Span<float> destination)
    {
        for (int i = 0; i < destination.Length; i++)
        {
            destination[i] = (float)NextGauss();
        }
    }

    /// <inheritdoc />
    public void FillStandardNormal(Span<Half> destination)
    {
        for (int i = 0; i < destination.Length; i++)
        {
            destination[i] = (Half)NextGauss();
        }
    }

    private double NextGauss()
    {
        if (_nextGauss is double cached)
        {
            _nextGauss = null;
            return cached;
        }

        double x1, x2, r2;
        do
        {
            x1 = (2.0 * NextDouble()) - 1.0;
            x2 = (2.0 * NextDouble()) - 1.0;
            r2 = (x1 * x1) + (x2 * x2);
        }
        while (r2 >= 1.0 || r2 == 0.0);

        double f = Math.Sqrt(-2.0 * Math.Log(r2) / r2);
        _nextGauss = f * x1;
        return f * x2;
    }

    // numpy's random_double: 27 + 26 bits of two words.
    private double NextDouble()
    {
        uint a = _engine.NextUInt32() >> 5;
        uint b = _engine.NextUInt32() >> 6;
        return ((a * 67108864.0) + b) / 9007199254740992.0;
    }
}
