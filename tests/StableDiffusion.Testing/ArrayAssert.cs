using Xunit;

namespace StableDiffusion.Testing;

/// <summary>Tolerance assertions over arrays that report where and by how much they differ.</summary>
public static class ArrayAssert
{
    /// <summary>Asserts max |actual - expected| &lt;= tolerance, naming the worst element.</summary>
    /// <param name="expected">The reference values.</param>
    /// <param name="actual">The values under test.</param>
    /// <param name="tolerance">The largest allowed absolute difference.</param>
    /// <param name="what">What the arrays are, for the message.</param>
    /// <returns>The largest absolute difference.</returns>
    public static double Close(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double tolerance, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: expected {expected.Length} elements, got {actual.Length}.");
        (double worst, int at) = MaxAbsDifference(expected, actual);
        TestContext.Current.TestOutputHelper?.WriteLine($"{what}: max |got - ref| = {worst:G3} (tolerance {tolerance:G3})");
        Assert.True(worst <= tolerance,
            $"{what}: max |got - ref| = {worst:G6} at index {at} (got {actual[at]:G9}, ref {expected[at]:G9}) exceeds {tolerance:G3}.");
        return worst;
    }

    /// <summary>Asserts max |actual - expected| &lt;= relative * max(1, max |expected|), the scheduler parity rule.</summary>
    /// <param name="expected">The reference values.</param>
    /// <param name="actual">The values under test.</param>
    /// <param name="relative">The relative tolerance.</param>
    /// <param name="what">What the arrays are, for the message.</param>
    /// <returns>The largest absolute difference relative to max(1, max |expected|).</returns>
    public static double CloseRelative(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double relative, string what)
    {
        double scale = 1;
        foreach (float e in expected)
        {
            scale = Math.Max(scale, Math.Abs(e));
        }

        return Close(expected, actual, relative * scale, what) / scale;
    }

    /// <summary>The largest absolute difference and its index (NaN counts as infinitely different).</summary>
    /// <param name="expected">The reference values.</param>
    /// <param name="actual">The values under test, of the same length.</param>
    public static (double Max, int Index) MaxAbsDifference(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        double worst = 0;
        int at = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = Math.Abs((double)actual[i] - expected[i]);
            if (double.IsNaN(d))
            {
                d = double.PositiveInfinity;
            }

            if (d > worst)
            {
                worst = d;
                at = i;
            }
        }

        return (worst, at);
    }
}
