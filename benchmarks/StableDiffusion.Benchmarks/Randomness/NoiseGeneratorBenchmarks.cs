using BenchmarkDotNet.Attributes;
using StableDiffusion.Randomness;

namespace StableDiffusion.Benchmarks.Randomness;

/// <summary>Drawing one SD 1.5 latent (1×4×64×64) of noise with each generator. Results: docs/seeds.md.</summary>
[MemoryDiagnoser]
public class NoiseGeneratorBenchmarks
{
    private readonly float[] _latent = new float[1 * 4 * 64 * 64];
    private readonly Half[] _halfLatent = new Half[1 * 4 * 64 * 64];

    [Benchmark(Baseline = true)]
    public void TorchCpuFloat32() => new TorchCpuGenerator(42).FillStandardNormal(_latent);

    [Benchmark]
    public void TorchCpuFloat16() => new TorchCpuGenerator(42).FillStandardNormal(_halfLatent);

    [Benchmark]
    public void TorchCudaFloat32() => new TorchCudaGenerator(42).FillStandardNormal(_latent);

    [Benchmark]
    public void NumpyFloat32() => new NumpyRandomState(42).FillStandardNormal(_latent);
}
