using StableDiffusion.Randomness;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.Randomness;

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

    [Theory]
    [InlineData("cpu_f32_seed0")]
    [InlineData("cpu_f32_seed42")]
    [InlineData("cpu_f32_stream")]
    [Trait("Category", "Parity")]
    [Trait("Area", "Rng")]
    public void Float32Stream_MatchesTorchWithin2e6(string name)
    {
        Reference.Require();
        var rngCase = Reference.Case("rng", name);
        var generator = new TorchCpuGenerator(rngCase.GetProperty("seed").GetUInt64());

        foreach (var arrayName in rngCase.GetProperty("arrays").EnumerateArray().Select(a => a.GetString()!))
        {
            float[] expected = Reference.Array(arrayName).ToSingle();
            var values = new float[expected.Length];
            generator.FillStandardNormal(values);
            ArrayAssert.Close(expected, values, 2e-6, arrayName);
        }
    }
}
