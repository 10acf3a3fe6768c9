using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace StableDiffusion.Schedulers.Tests.Examples;

// The custom-scheduler example of docs/schedulers.md, compiled and tested here so that the page stays true.

/// <summary>A minimal Euler scheduler written against the public IScheduler interface.</summary>
public sealed class MyEulerScheduler : IScheduler
{
    private readonly float[] _trainingSigmas;   // σ = √((1 − ᾱ)/ᾱ) per training timestep
    private float[] _timesteps = [];
    private float[] _sigmas = [];
    private int _index;

    public MyEulerScheduler(SchedulerConfig config)
    {
        Config = config;
        // Reuse the model's noise schedule as a built-in scheduler reads it from the configuration.
        IReadOnlyList<float> alphasCumprod = EulerDiscreteScheduler.FromConfig(config).AlphasCumprod;
        _trainingSigmas = alphasCumprod.Select(a => MathF.Sqrt((1 - a) / a)).ToArray();
    }

    public SchedulerConfig Config { get; }

    public int Order => 1;

    public float InitNoiseSigma => _sigmas.Length > 0 ? _sigmas[0] : _trainingSigmas[^1];

    public IReadOnlyList<float> Timesteps => _timesteps;

    public int NumInferenceSteps => _timesteps.Length;

    public void SetTimesteps(int numInferenceSteps)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(numInferenceSteps, 2);
        double last = _trainingSigmas.Length - 1;
        _timesteps = Enumerable.Range(0, numInferenceSteps)
            .Select(i => (float)Math.Round(last - i * last / (numInferenceSteps - 1)))
            .ToArray();
        _sigmas = [.. _timesteps.Select(t => _trainingSigmas[(int)t]), 0f];
        _index = 0;
    }

    public void SetBeginIndex(int beginIndex) => _index = beginIndex;

    public void ScaleModelInput(ReadOnlyTensorSpan<float> sample, float timestep, TensorSpan<float> destination)
    {
        float sigma = _sigmas[_index];
        TensorPrimitives.Divide(Flat(sample), MathF.Sqrt(sigma * sigma + 1), Flat(destination));
    }

    public void Step(ReadOnlyTensorSpan<float> modelOutput, float timestep, ReadOnlyTensorSpan<float> sample, TensorSpan<float> prevSample, SchedulerStepOptions? options = null)
    {
        // x₀ = x − σ·ε, d = (x − x₀)/σ = ε, x' = x + d·(σ_next − σ)
        float dt = _sigmas[_index + 1] - _sigmas[_index];
        TensorPrimitives.MultiplyAdd(Flat(modelOutput), dt, Flat(sample), Flat(prevSample));
        _index++;
    }

    public void AddNoise(ReadOnlyTensorSpan<float> originalSamples, ReadOnlyTensorSpan<float> noise, float timestep, TensorSpan<float> destination)
    {
        float sigma = _sigmas[Array.IndexOf(_timesteps, timestep)];
        TensorPrimitives.MultiplyAdd(Flat(noise), sigma, Flat(originalSamples), Flat(destination));
    }

    public IScheduler Clone() => new MyEulerScheduler(Config);

    private static ReadOnlySpan<float> Flat(ReadOnlyTensorSpan<float> tensor) =>
        MemoryMarshal.CreateReadOnlySpan(in TensorMarshal.GetReference(tensor), checked((int)tensor.FlattenedLength));

    private static Span<float> Flat(TensorSpan<float> tensor) =>
        MemoryMarshal.CreateSpan(ref TensorMarshal.GetReference(tensor), checked((int)tensor.FlattenedLength));
}
