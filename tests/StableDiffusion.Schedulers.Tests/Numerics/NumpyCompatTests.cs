using Xunit;

namespace StableDiffusion.Schedulers.Tests.Numerics;

public sealed class NumpyCompatTests
{
    [Fact]
    public void Linspace_EndsExactlyAtStop()
    {
        double[] values = NumpyCompat.Linspace(0, 999, 50);

        Assert.Equal(50, values.Length);
        Assert.Equal(0, values[0]);
        Assert.Equal(999, values[^1]);
        Assert.Equal(999.0 / 49, values[1], 12);
    }

    [Fact]
    public void Linspace_WithoutEndpoint_StepsByRangeOverCount()
    {
        Assert.Equal([0, 12.5, 25, 37.5], NumpyCompat.Linspace(0, 50, 4, endpoint: false));
    }

    [Theory]
    [InlineData(10, 10)]
    [InlineData(61, 62)]
    [InlineData(103, 104)]
    [InlineData(50, 50)]
    public void Arange_LengthFollowsNumpysCeilRule(int steps, int expectedLength)
    {
        double[] values = NumpyCompat.Arange(1000, 0, -(1000.0 / steps));

        Assert.Equal(expectedLength, values.Length);
        Assert.Equal(1000, values[0]);
    }

    [Theory]
    [InlineData(0.5, 0)]
    [InlineData(1.5, 2)]
    [InlineData(2.5, 2)]
    [InlineData(-0.5, 0)]
    [InlineData(959.04, 959)]
    public void Round_HalvesToEven(double value, double expected) => Assert.Equal(expected, NumpyCompat.Round(value));

    [Fact]
    public void Interp_IsLinearBetweenEntriesAndClampedOutside()
    {
        float[] table = [1, 3, 7];

        Assert.Equal(1, NumpyCompat.Interp(-1, table));
        Assert.Equal(2, NumpyCompat.Interp(0.5, table));
        Assert.Equal(3, NumpyCompat.Interp(1, table));
        Assert.Equal(6, NumpyCompat.Interp(1.75, table));
        Assert.Equal(7, NumpyCompat.Interp(5, table));
    }
}
