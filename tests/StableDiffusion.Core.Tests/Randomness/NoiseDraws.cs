using StableDiffusion.Schedulers;
using Xunit;

namespace StableDiffusion.Core.Tests.Randomness;

/// <summary>One draw of a given dtype from any generator, and a double-precision closeness check.</summary>
internal static class NoiseDraws
{
    public static T[] Draw<T>(INoiseGenerator generator, int count)
    {
        var values = new T[count];
        switch (values)
        {
            case float[] singles:
                generator.FillStandardNormal(singles);
                break;
            case double[] doubles:
                generator.FillStandardNormal(doubles);
                break;
            case Half[] halves:
                generator.FillStandardNormal(halves);
                break;
            default:
                throw new NotSupportedException($"No draw of {typeof(T).Name}.");
        }

        return values;
    }

    public static void AssertClose(ReadOnlySpan<double> expected, ReadOnlySpan<double> actual, double tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"index {i}: got {actual[i]:R}, expected {expected[i]:R}");
        }
    }
}
