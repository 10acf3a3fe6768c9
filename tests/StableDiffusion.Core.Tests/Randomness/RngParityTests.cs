using System.Text.Json;
using StableDiffusion.Randomness;
using StableDiffusion.Schedulers;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.Randomness;

/// <summary>Every <c>rng</c> case of every reference: one generator per case, one draw per listed shape, in order.</summary>
public sealed class RngParityTests
{
    // torch's vectorised CPU math and the GPU's __sincosf differ from exact math by an ulp or two (issue 4's target).
    private const double SingleAndDoubleTolerance = 2e-6;

    public static IEnumerable<TheoryDataRow<string>> Cases() => Reference.CaseNames("rng");

    [Theory]
    [MemberData(nameof(Cases))]
    [Trait("Category", "Parity")]
    [Trait("Area", "Rng")]
    public void Draws_MatchTorch(string name)
    {
        (ReferenceSet set, JsonElement rngCase) = Reference.Case("rng", name);
        Reference.RequireKnownFields(rngCase, name, "name", "seed", "device", "dtype", "shapes", "arrays");
        string device = rngCase.GetProperty("device").GetString()!;
        string dtype = rngCase.GetProperty("dtype").GetString()!;
        ulong seed = rngCase.GetProperty("seed").GetUInt64();
        INoiseGenerator generator = device switch
        {
            "cpu" => new TorchCpuGenerator(seed),
            "cuda" => new TorchCudaGenerator(seed),
            _ => throw new InvalidOperationException($"Case '{name}': no generator reproduces device '{device}'."),
        };

        JsonElement[] shapes = [.. rngCase.GetProperty("shapes").EnumerateArray()];
        string[] arrays = [.. rngCase.GetProperty("arrays").EnumerateArray().Select(a => a.GetString()!)];
        Assert.Equal(shapes.Length, arrays.Length);
        for (int draw = 0; draw < arrays.Length; draw++)
        {
            int count = shapes[draw].EnumerateArray().Aggregate(1, (product, dimension) => product * dimension.GetInt32());
            float[] expected = set.Array(arrays[draw]).ToSingle();
            Assert.Equal(count, expected.Length);
            string what = $"{name} draw {draw} ({dtype}, {count} values)";
            switch (dtype)
            {
                case "float32":
                    var singles = new float[count];
                    generator.FillStandardNormal(singles);
                    ArrayAssert.Close(expected, singles, SingleAndDoubleTolerance, what);
                    break;
                case "float64":
                    var doubles = new double[count];
                    generator.FillStandardNormal(doubles);
                    ArrayAssert.Close(expected, [.. doubles.Select(d => (float)d)], SingleAndDoubleTolerance, what);
                    break;
                case "float16":
                    var halves = new Half[count];
                    generator.FillStandardNormal(halves);
                    AssertHalfClose(expected, halves, device == "cuda" ? SingleAndDoubleTolerance : 0, what);
                    break;
                default:
                    throw new InvalidOperationException($"Case '{name}': no draw reproduces dtype '{dtype}'.");
            }
        }
    }

    /// <summary>
    /// Equal or one fp16 ulp apart; on CUDA, where fp16 is the fp32 draw rounded, a value within the fp32 tolerance of the
    /// reference is accepted too (near zero that can be more than one fp16 ulp).
    /// </summary>
    private static void AssertHalfClose(float[] expected, Half[] actual, double absoluteTolerance, string what)
    {
        for (int i = 0; i < expected.Length; i++)
        {
            Half reference = (Half)expected[i];
            Assert.True((float)reference == expected[i], $"{what}: reference value {expected[i]:G9} at {i} is not an fp16 value.");
            bool close = HalfUlpDistance(reference, actual[i]) <= 1 || Math.Abs((float)actual[i] - expected[i]) <= absoluteTolerance;
            Assert.True(close, $"{what}: got {(float)actual[i]:G9} at index {i}, reference {expected[i]:G9}: more than one fp16 ulp apart.");
        }
    }

    internal static int HalfUlpDistance(Half a, Half b)
    {
        // Map the sign-magnitude bit patterns onto a line where adjacent values differ by one (+0 and -0 coincide).
        static int Ordinal(Half h)
        {
            short bits = BitConverter.HalfToInt16Bits(h);
            return bits < 0 ? -(bits & 0x7FFF) : bits;
        }

        return Math.Abs(Ordinal(a) - Ordinal(b));
    }
}
