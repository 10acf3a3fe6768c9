using StableDiffusion.Randomness;
using StableDiffusion.Testing;
using Xunit;
using static StableDiffusion.Core.Tests.Randomness.NoiseDraws;

namespace StableDiffusion.Core.Tests.Randomness;

// Check values: ../shared/notes/seeded-noise-and-img2img.md (numpy 1.24) and numpy 2.5.2, numpy.random.RandomState(seed).randn(...).
[Trait("Area", "Rng")]
public sealed class NumpyRandomStateTests
{
    [Fact]
    public void Seed0Latent_MatchesNumpyCheckValues()
    {
        double[] values = Draw<double>(new NumpyRandomState(0), 1 * 4 * 64 * 64);

        AssertClose([1.7640524, 0.40015721, 0.97873801, 2.2408931, 1.867558, -0.97727788, 0.95008842, -0.15135721], values.AsSpan(0, 8), 1e-7);
        AssertClose([0.49736643, -0.87612623, -0.7698, 0.96600032], values.AsSpan(^4..), 1e-7);
    }

    [Fact]
    public void CachedSecondValue_CarriesOverToTheNextDraw()
    {
        // RandomState(42): randn(3), randn(4), randn(2, 5). Each pair of the polar method gives two values, so an odd draw
        // leaves one cached for the next call.
        var generator = new NumpyRandomState(42);

        double[] first = Draw<double>(generator, 3);
        double[] second = Draw<double>(generator, 4);
        double[] third = Draw<double>(generator, 10);

        Assert.Equal([0.4967141530112327, -0.13826430117118466, 0.6476885381006925], first);
        Assert.Equal([1.5230298564080254, -0.23415337472333597, -0.23413695694918055, 1.5792128155073915], second);
        Assert.Equal([0.7674347291529088, -1.0128311203344238], [third[0], third[^1]]);
    }

    [Fact]
    public void LargestSeed_MatchesNumpy()
    {
        double[] values = Draw<double>(new NumpyRandomState(uint.MaxValue), 3);

        Assert.Equal([0.6484086742306527, 0.6693235306338161, -1.0805437227474493], values);
    }

    [Fact]
    public void SingleAndHalfDraws_AreTheDoubleDrawRounded()
    {
        double[] doubles = Draw<double>(new NumpyRandomState(7), 1001);
        float[] singles = Draw<float>(new NumpyRandomState(7), 1001);
        Half[] halves = Draw<Half>(new NumpyRandomState(7), 1001);

        Assert.Equal([.. doubles.Select(d => (float)d)], singles);
        Assert.Equal([.. doubles.Select(d => (Half)d)], halves);
    }

    [Fact]
    public void MersenneTwister_MatchesTheReferenceStream()
    {
        var engine = new MersenneTwister(0);

        Assert.Equal([2357136044u, 2546248239u, 3071714933u], [engine.NextUInt32(), engine.NextUInt32(), engine.NextUInt32()]);
    }
}
