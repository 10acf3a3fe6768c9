using System.Numerics.Tensors;
using BenchmarkDotNet.Attributes;
using StableDiffusion.Pipelines.Internal;

namespace StableDiffusion.Benchmarks.Pipelines;

/// <summary>
/// The decoded images' conversion from the VAE's NCHW [-1, 1] to NHWC [0, 1] (<see cref="ImageOutput.ToNhwcUnitRange"/>),
/// one and four 512 x 512 images, against the three whole-array passes after a strided transpose it replaced (the
/// baseline); both give the same values bit for bit. Results: docs/performance.md.
/// </summary>
[MemoryDiagnoser]
public class ImageOutputBenchmarks
{
    private Tensor<float> _decoded = null!;

    [Params(1, 4)]
    public int Images { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(42);
        _decoded = Tensor.Create([.. Enumerable.Range(0, Images * 3 * 512 * 512).Select(_ => (random.NextSingle() * 2) - 1)], [Images, 3, 512, 512]);
    }

    [Benchmark(Baseline = true)]
    public float[] TransposeThenThreePasses()
    {
        ReadOnlySpan<float> values = _decoded.AsSpan();
        var nhwc = new float[values.Length];
        const int plane = 512 * 512;
        for (int b = 0; b < Images; b++)
        {
            for (int c = 0; c < 3; c++)
            {
                ReadOnlySpan<float> source = values.Slice(((b * 3) + c) * plane, plane);
                Span<float> destination = nhwc.AsSpan(b * 3 * plane, 3 * plane);
                for (int p = 0, o = c; p < source.Length; p++, o += 3)
                {
                    destination[o] = source[p];
                }
            }
        }

        TensorPrimitives.Multiply(nhwc, 0.5f, nhwc);
        TensorPrimitives.Add(nhwc, 0.5f, nhwc);
        TensorPrimitives.Clamp(nhwc, 0f, 1f, nhwc);
        return nhwc;
    }

    [Benchmark]
    public Tensor<float> ToNhwcUnitRange() => ImageOutput.ToNhwcUnitRange(_decoded);
}
