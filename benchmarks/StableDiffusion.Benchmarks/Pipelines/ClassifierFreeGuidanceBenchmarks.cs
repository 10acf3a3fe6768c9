using System.Numerics.Tensors;
using BenchmarkDotNet.Attributes;
using StableDiffusion.Pipelines.Internal;

namespace StableDiffusion.Benchmarks.Pipelines;

/// <summary>
/// Classifier-free guidance over one step's prediction (Images × 4 × 64 × 64: 512 × 512 images), in cache-sized chunks as
/// the pipeline computes it (<see cref="ClassifierFreeGuidance.Combine"/>) against three whole-array passes (the
/// baseline); both give the same values bit for bit. Results: docs/performance.md.
/// </summary>
[MemoryDiagnoser]
public class ClassifierFreeGuidanceBenchmarks
{
    private float[] _uncond = null!;
    private float[] _text = null!;
    private float[] _guided = null!;

    [Params(1, 8)]
    public int Images { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        int length = Images * 4 * 64 * 64;
        var random = new Random(42);
        _uncond = [.. Enumerable.Range(0, length).Select(_ => random.NextSingle())];
        _text = [.. Enumerable.Range(0, length).Select(_ => random.NextSingle())];
        _guided = new float[length];
    }

    [Benchmark(Baseline = true)]
    public void WholeArrayPasses()
    {
        TensorPrimitives.Subtract(_text, _uncond, _guided);
        TensorPrimitives.Multiply(_guided, 7.5f, _guided);
        TensorPrimitives.Add(_uncond, _guided, _guided);
    }

    [Benchmark]
    public void Chunked() => ClassifierFreeGuidance.Combine(_uncond, _text, 7.5f, _guided);
}
