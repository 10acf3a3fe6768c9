using StableDiffusion.Randomness;
using StableDiffusion.Testing;
using Xunit;
using static StableDiffusion.Core.Tests.Randomness.NoiseDraws;

namespace StableDiffusion.Core.Tests.Randomness;

// Check values were drawn with torch 2.11.0 (CPU capability AVX512): torch.randn(n, generator=torch.Generator("cpu")
// .manual_seed(seed), dtype=dtype), one call per draw on one generator, as each test lists.
[Trait("Area", "Rng")]
public sealed class TorchCpuGeneratorTests
{
    [Fact]
    public void Seed0_MatchesTorchRandnFirstValues()
    {
        // torch.manual_seed(0); torch.randn(4, 3, 8, 8)[:8]
        float[] expected = [-1.1258398f, -1.1523602f, -0.25057858f, -0.43387884f, 0.8487103f, 0.69200915f, -0.31601277f, -2.1152196f];
        var values = new float[4 * 3 * 8 * 8];

        new TorchCpuGenerator(0).FillStandardNormal(values);

        ArrayAssert.Close(expected, values.AsSpan(0, 8), 2e-6, "randn(4,3,8,8)[:8]");
    }

    [Fact]
    public void StreamAcrossDtypesAndSizes_MatchesTorch()
    {
        // Seed 7, draws: f64×3, f32×1, f16×1, f32×20, f64×2, f16×3, f32×5. Small draws take the double path and share one
        // cached second Box-Muller value whatever their dtype; the 20-value draw takes the block path and leaves the cache alone.
        var generator = new TorchCpuGenerator(7);

        double[] draw0 = Draw<double>(generator, 3);
        float[] draw1 = Draw<float>(generator, 1);
        Half[] draw2 = Draw<Half>(generator, 1);
        float[] draw3 = Draw<float>(generator, 20);
        double[] draw4 = Draw<double>(generator, 2);
        Half[] draw5 = Draw<Half>(generator, 3);
        float[] draw6 = Draw<float>(generator, 5);

        AssertClose([-0.1467950974849952, 0.7861412987235358, 0.9468216090039564], draw0, 1e-15);
        Assert.Equal(-1.114344f, draw1[0]);
        Assert.Equal((Half)1.6904297f, draw2[0]);
        ArrayAssert.Close([0.60947347f, -0.5811338f, 0.049043868f, -0.32047692f], draw3.AsSpan(0, 4), 2e-6, "f32×20 head");
        ArrayAssert.Close([-0.26158673f, -0.25013262f, 0.50112146f, 0.2600362f], draw3.AsSpan(16, 4), 2e-6, "f32×20 redrawn tail");
        AssertClose([-0.8948278791726386, 1.2798780914046086], draw4, 1e-15);
        Assert.Equal([(Half)(-0.9941406f), (Half)1.8154297f, (Half)(-0.60302734f)], draw5);
        ArrayAssert.Close([1.6148148f, 1.9301982f, -0.42250147f, -0.08318638f, -0.983726f], draw6, 1e-7, "f32×5 (double path)");
    }

    [Fact]
    public void Float64Blocks_MatchTorch()
    {
        // Seed 42, draws f64×16384, f64×16384, f64×420: 53-bit uniforms in blocks of 16, the last block redrawn.
        var generator = new TorchCpuGenerator(42);

        double[] first = Draw<double>(generator, 16384);
        Draw<double>(generator, 16384);
        double[] third = Draw<double>(generator, 420);

        AssertClose([0.2995562877502637, 0.24237779080894106, 0.28320739441795323, -0.23294220898382634], first.AsSpan(0, 4), 1e-15);
        AssertClose([1.3074574163219403], first.AsSpan(^1..), 1e-15);
        AssertClose([1.7424954899849665], third.AsSpan(0, 1), 1e-15);
        AssertClose([-1.9694097906540908], third.AsSpan(^1..), 1e-15);
    }

    [Fact]
    public void Float16Blocks_AreTheirOwnStream()
    {
        // Seed 42, f16×16384 then f16×16384 and f16×420: 11-bit uniforms and Box-Muller in c10::Half arithmetic.
        var generator = new TorchCpuGenerator(42);

        Half[] first = Draw<Half>(generator, 16384);
        Draw<Half>(generator, 16384);
        Half[] third = Draw<Half>(generator, 420);

        Half[] expectedHead = [.. new[] { 0.3869629f, 1.4707031f, 0.14685059f, -1.1181641f, 0.67089844f, -0.20385742f, 1.8525391f, -0.49926758f }.Select(v => (Half)v)];
        Assert.Equal(expectedHead, first[..8]);
        Assert.Equal([(Half)(-1.0351562f), (Half)(-2.1015625f)], first[^2..]);
        Assert.Equal([(Half)(-0.87597656f), (Half)(-1.3964844f)], [third[0], third[^1]]);

        var singles = new float[16384];
        new TorchCpuGenerator(42).FillStandardNormal(singles);
        Assert.NotEqual((float)first[0], singles[0], 1e-2f);
    }

    [Fact]
    public void LargestSeed_MatchesTorch()
    {
        // manual_seed(2**64 - 1): f32×100, f32×3, f64×40, f16×40.
        var generator = new TorchCpuGenerator(ulong.MaxValue);

        float[] singles = Draw<float>(generator, 100);
        Draw<float>(generator, 3);
        double[] doubles = Draw<double>(generator, 40);
        Half[] halves = Draw<Half>(generator, 40);

        ArrayAssert.Close([-2.6642976f, -1.0910486f, 0.45144743f, 0.2283607f], singles.AsSpan(0, 4), 2e-6, "f32×100 head");
        AssertClose([1.7692903426595719, 1.711748015058276], doubles.AsSpan(0, 2), 1e-15);
        Assert.Equal([(Half)0.8828125f, (Half)0.93408203f], halves[..2]);
    }

    [Theory]
    [InlineData(5UL, 4294967301UL)]
    [InlineData(0UL, 4294967296UL)]
    [InlineData(0UL, 9223372036854775808UL)]
    public void SeedsWithTheSameLow32Bits_DrawTheSameStream(ulong seed, ulong sameLowBits)
    {
        float[] a = Draw<float>(new TorchCpuGenerator(seed), 100);
        float[] b = Draw<float>(new TorchCpuGenerator(sameLowBits), 100);

        Assert.Equal(a, b);
    }

    [Fact]
    public void EmptyDraw_ConsumesNothing()
    {
        var generator = new TorchCpuGenerator(0);
        generator.FillStandardNormal(Span<float>.Empty);
        generator.FillStandardNormal(Span<double>.Empty);
        generator.FillStandardNormal(Span<Half>.Empty);

        float[] values = Draw<float>(generator, 4 * 3 * 8 * 8);

        Assert.Equal(-1.1258398f, values[0], 2e-6f);
    }
}
