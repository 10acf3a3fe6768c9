using StableDiffusion.Randomness;
using StableDiffusion.Testing;
using Xunit;
using static StableDiffusion.Core.Tests.Randomness.NoiseDraws;

namespace StableDiffusion.Core.Tests.Randomness;

// Check values were drawn with torch 2.11.0+cu130 on an NVIDIA H200 (132 multiprocessors, 2048 threads each):
// torch.randn(n, generator=torch.Generator("cuda").manual_seed(seed), device="cuda", dtype=dtype), one call per draw.
[Trait("Area", "Rng")]
public sealed class TorchCudaGeneratorTests
{
    // The GPU's __sincosf is an approximation; measured differences stay under 1.5e-6.
    private const double SingleTolerance = 2e-6;

    [Fact]
    public void StreamOfSizes_MatchesTorch()
    {
        // Seed 0, f32 draws of 16384, 1, 100 and 257: each draw starts 4 Philox outputs further per curand call a thread made.
        var generator = new TorchCudaGenerator(0);

        float[] latent = Draw<float>(generator, 16384);
        float[] one = Draw<float>(generator, 1);
        float[] hundred = Draw<float>(generator, 100);
        float[] twoBlocks = Draw<float>(generator, 257);

        ArrayAssert.Close([-0.9246624f, -0.42534423f, -2.6438458f, 0.14518386f], latent.AsSpan(0, 4), SingleTolerance, "f32×16384 head");
        ArrayAssert.Close([-2.9543154f], latent.AsSpan(^1..), SingleTolerance, "f32×16384 last");
        ArrayAssert.Close([0.18082583f], one, SingleTolerance, "f32×1");
        ArrayAssert.Close([2.5440972f, -0.7163489f], hundred.AsSpan(0, 2), SingleTolerance, "f32×100 head");
        ArrayAssert.Close([-1.8186679f], hundred.AsSpan(^1..), SingleTolerance, "f32×100 last");
        ArrayAssert.Close([0.35158226f, -0.23972143f], [twoBlocks[0], twoBlocks[256]], SingleTolerance, "f32×257 first and second block");
    }

    [Fact]
    public void Float64_MatchesTorch()
    {
        // Seed 0, f64×16384 then f64×1: curand_normal2_double on 53-bit uniforms.
        var generator = new TorchCudaGenerator(0);

        double[] latent = Draw<double>(generator, 16384);
        double[] one = Draw<double>(generator, 1);

        AssertClose([-0.3103957360003765, -0.03432813230409514, 0.17559472731904127, -2.2803814347037816], latent.AsSpan(0, 4), 1e-14);
        AssertClose([0.3808616244464634], latent.AsSpan(^1..), 1e-14);
        AssertClose([0.3292107012677683], one, 1e-14);
    }

    [Fact]
    public void Float16_IsTheSingleDrawRounded()
    {
        // Seed 0, f16×16384: on CUDA torch rounds the float draw to half (unlike on the CPU).
        Half[] halves = Draw<Half>(new TorchCudaGenerator(0), 16384);
        float[] singles = Draw<float>(new TorchCudaGenerator(0), 16384);

        Assert.Equal([(Half)(-0.9248047f), (Half)(-0.42529297f), (Half)(-2.6445312f), (Half)0.1451416f], halves[..4]);
        Assert.Equal((Half)(-2.9550781f), halves[^1]);
        Assert.Equal([.. singles.Select(v => (Half)v)], halves);
    }

    [Fact]
    public void LargestSeed_UsesAll64BitsAsThePhiloxKey()
    {
        // manual_seed(2**64 - 1): f32×100, f64×10, f16×10; and 2**32 + 1, which differs from seed 1 only above bit 31.
        var generator = new TorchCudaGenerator(ulong.MaxValue);

        float[] singles = Draw<float>(generator, 100);
        double[] doubles = Draw<double>(generator, 10);
        Half[] halves = Draw<Half>(generator, 10);
        float[] highBits = Draw<float>(new TorchCudaGenerator(4294967297UL), 100);
        float[] lowBits = Draw<float>(new TorchCudaGenerator(1), 100);

        ArrayAssert.Close([0.6323022f, 0.033501107f, 0.8390876f, -2.0634682f], singles.AsSpan(0, 4), SingleTolerance, "f32×100 head");
        AssertClose([-1.1030616365759078, -0.7918531347773624], doubles.AsSpan(0, 2), 1e-14);
        Assert.Equal([(Half)0.8745117f, (Half)0.07434082f], halves[..2]);
        ArrayAssert.Close([0.854894f, -0.11420175f], highBits.AsSpan(0, 2), SingleTolerance, "seed 2**32+1 head");
        Assert.NotEqual(highBits, lowBits);
    }

    [Fact]
    public void DrawLargerThanTheGridCap_MatchesTheGpuItIsGiven()
    {
        // Seed 3, f32×1,000,000 then f32×5 on a 132 × 2048 GPU: the grid is capped at 1056 blocks (270,336 threads), so each
        // thread's curand_normal4 fills four elements one grid apart, and the next draw starts 4 outputs further.
        var generator = new TorchCudaGenerator(3, multiprocessorCount: 132, maxThreadsPerMultiprocessor: 2048);

        float[] big = Draw<float>(generator, 1_000_000);
        float[] next = Draw<float>(generator, 5);

        float[] expected = [0.42634457f, 0.9536478f, 0.4725541f, -0.9139685f, 0.08773166f, -0.15309969f];
        ArrayAssert.Close(expected, [big[0], big[270335], big[270336], big[540672], big[811008], big[999999]], SingleTolerance, "f32×1e6");
        ArrayAssert.Close([-0.5161581f, -0.2216531f, -0.55940443f, 0.55415034f, 0.19102159f], next, SingleTolerance, "f32×5 after");

        float[] uncapped = Draw<float>(new TorchCudaGenerator(3), 1_000_000);
        Assert.Equal(big[0], uncapped[0]);
        Assert.NotEqual(big[270336], uncapped[270336]);
    }

    [Fact]
    public void Float64DrawOverTwoRounds_MatchesTorch()
    {
        // Seed 3, f64×600,000 then f64×5 on a 132 × 2048 GPU: two values per curand call, two grid-stride rounds.
        var generator = new TorchCudaGenerator(3, 132, 2048);

        double[] big = Draw<double>(generator, 600_000);
        double[] next = Draw<double>(generator, 5);

        AssertClose([-2.0627528404400013, 0.19800005622324132, -0.683272835518266, -0.24365861906126596], [big[0], big[270336], big[540672], big[599999]], 1e-14);
        AssertClose([0.5331167462952684, -0.011699579448343567], [next[0], next[4]], 1e-14);
    }

    [Theory]
    [InlineData(0, 2048)]
    [InlineData(132, 255)]
    [InlineData(-1, 2048)]
    public void GpuFigures_MustDescribeARealGpu(int multiprocessors, int threadsPerMultiprocessor)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new TorchCudaGenerator(0, multiprocessors, threadsPerMultiprocessor));
    }
}
