using System.Numerics.Tensors;
using StableDiffusion.Imaging;
using Xunit;

namespace StableDiffusion.Core.Tests.Imaging;

/// <summary>The library-neutral image: from RGB, RGBA or a tensor, and back to a tensor.</summary>
[Trait("Area", "Images")]
public sealed class RgbImageTests
{
    [Fact]
    public void FromRgb_CopiesThePixels()
    {
        byte[] rgb = [1, 2, 3, 4, 5, 6];

        RgbImage image = RgbImage.FromRgb(rgb, 2, 1);
        rgb[0] = 99;

        Assert.Equal((2, 1), (image.Width, image.Height));
        Assert.Equal([1, 2, 3, 4, 5, 6], image.Pixels.ToArray());
    }

    [Theory]
    [InlineData(2, 2, 11, "A 2x2 RGB image has 12 bytes (3 per pixel, no row padding), but 11 were given.")]
    [InlineData(2, 2, 16, "A 2x2 RGB image has 12 bytes (3 per pixel, no row padding), but 16 were given.")]
    public void FromRgb_OfTheWrongLength_SaysWhatWasExpected(int width, int height, int length, string message)
    {
        var ex = Assert.Throws<ArgumentException>(() => RgbImage.FromRgb(new byte[length], width, height));

        Assert.StartsWith(message, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(1, -1)]
    public void FromRgb_WithoutPixels_Throws(int width, int height)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => RgbImage.FromRgb([], width, height));
    }

    [Fact]
    public void FromRgba_DropsTheAlphaOfOpaquePixels()
    {
        RgbImage image = RgbImage.FromRgba([10, 20, 30, 255, 40, 50, 60, 255], 2, 1);

        Assert.Equal([10, 20, 30, 40, 50, 60], image.Pixels.ToArray());
    }

    [Fact]
    public void FromRgba_RefusesTransparency_NamingThePixel_UnlessAlphaIsIgnored()
    {
        byte[] rgba = [10, 20, 30, 255, 40, 50, 60, 255, 70, 80, 90, 128, 1, 2, 3, 0];

        var ex = Assert.Throws<ArgumentException>(() => RgbImage.FromRgba(rgba, 2, 2));
        RgbImage ignored = RgbImage.FromRgba(rgba, 2, 2, ignoreAlpha: true);

        Assert.StartsWith("The image has transparent pixels (alpha 128 at x 0, y 1); Stable Diffusion works on opaque RGB images. Flatten it onto a background colour first",
            ex.Message, StringComparison.Ordinal);
        Assert.Equal([10, 20, 30, 40, 50, 60, 70, 80, 90, 1, 2, 3], ignored.Pixels.ToArray());
    }

    [Fact]
    public void FromTensor_RoundsLikeNumpyToPil_AndToTensorGivesLevelsOver255()
    {
        // 0.5 * 255 = 127.5 rounds to the even 128; 0.0019607844 * 255 = 0.5 rounds to 0.
        float[] values = [0f, 0.5f, 1f, 0.0019607844f, 0.25f, 0.75f];

        RgbImage fromNhwc = RgbImage.FromTensor(Tensor.Create(values, [1, 1, 2, 3]));
        RgbImage fromHwc = RgbImage.FromTensor(Tensor.Create(values, [1, 2, 3]));
        Tensor<float> back = fromNhwc.ToTensor();

        Assert.Equal([0, 128, 255, 0, 64, 191], fromNhwc.Pixels.ToArray());
        Assert.Equal(fromNhwc.Pixels.ToArray(), fromHwc.Pixels.ToArray());
        Assert.Equal([1, 1, 2, 3], back.Lengths.ToArray());
        var flat = new float[back.FlattenedLength];
        back.FlattenTo(flat);
        Assert.Equal(fromNhwc.Pixels.ToArray().Select(b => b / 255f), flat);
        Assert.Equal(fromNhwc.Pixels.ToArray(), RgbImage.FromTensor(back).Pixels.ToArray());
    }

    [Theory]
    [InlineData(new[] { 2, 2, 2, 3 }, "[2, 2, 2, 3]")]
    [InlineData(new[] { 1, 3, 2, 2 }, "[1, 3, 2, 2]")]
    [InlineData(new[] { 12 }, "[12]")]
    public void FromTensor_OfAnotherShape_NamesIt(int[] shape, string named)
    {
        Tensor<float> tensor = Tensor.Create(new float[shape.Aggregate(1, (a, b) => a * b)], [.. shape.Select(d => (nint)d)]);

        var ex = Assert.Throws<ArgumentException>(() => RgbImage.FromTensor(tensor));

        Assert.Contains($"but this one is {named}", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(-0.1f)]
    [InlineData(1.5f)]
    [InlineData(float.NaN)]
    public void FromTensor_OutsideZeroToOne_Throws(float value)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => RgbImage.FromTensor(Tensor.Create([0.5f, value, 0.5f], [1, 1, 3])));
    }
}
