using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;
using StableDiffusion.Imaging;
using StableDiffusion.Pipelines;
using Xunit;

namespace StableDiffusion.ImageSharp.Tests;

/// <summary>RgbImage to and from ImageSharp, and the core's PNGs read by ImageSharp.</summary>
[Trait("Area", "Images")]
public sealed class ImageSharpExtensionsTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(7, 5)]
    [InlineData(300, 211)]
    public void ToImageSharp_ThenBack_KeepsEveryPixel(int width, int height)
    {
        RgbImage image = Noise(width, height);

        using Image<Rgb24> converted = image.ToImageSharp();
        RgbImage back = converted.ToRgbImage();

        Assert.Equal((width, height), (converted.Width, converted.Height));
        ReadOnlySpan<byte> pixels = image.Pixels.Span;
        Assert.Equal(new Rgb24(pixels[0], pixels[1], pixels[2]), converted[0, 0]);
        int last = pixels.Length - 3;
        Assert.Equal(new Rgb24(pixels[last], pixels[last + 1], pixels[last + 2]), converted[width - 1, height - 1]);
        Assert.Equal(image.Pixels.ToArray(), back.Pixels.ToArray());
    }

    [Fact]
    public void ToRgbImage_TakesAnyPixelFormat()
    {
        using var gray = new Image<L8>(2, 1);
        gray[0, 0] = new L8(10);
        gray[1, 0] = new L8(200);
        using var bgra = new Image<Bgra32>(1, 1);
        bgra[0, 0] = new Bgra32(1, 2, 3, 255);
        using var deep = new Image<Rgb48>(1, 1);
        deep[0, 0] = new Rgb48(0, 32896, 65535);

        Assert.Equal([10, 10, 10, 200, 200, 200], gray.ToRgbImage().Pixels.ToArray());
        Assert.Equal([1, 2, 3], bgra.ToRgbImage().Pixels.ToArray());
        Assert.Equal([0, 128, 255], deep.ToRgbImage().Pixels.ToArray());
    }

    [Fact]
    public void ToRgbImage_RefusesTransparency_UnlessAlphaIsIgnored()
    {
        using var image = new Image<Rgba32>(2, 1);
        image[0, 0] = new Rgba32(10, 20, 30, 255);
        image[1, 0] = new Rgba32(40, 50, 60, 100);

        var ex = Assert.Throws<ArgumentException>(() => image.ToRgbImage());

        Assert.StartsWith("The image has transparent pixels (alpha 100 at x 1, y 0)", ex.Message, StringComparison.Ordinal);
        Assert.Equal([10, 20, 30, 40, 50, 60], image.ToRgbImage(ignoreAlpha: true).Pixels.ToArray());
    }

    [Fact]
    public void TheCoresPng_DecodesInImageSharp_WithItsParametersChunk()
    {
        RgbImage image = Noise(33, 17);
        var parameters = new GenerationParameters { Prompt = "a castle, at dusk", NumInferenceSteps = 20, Seed = 7, Width = 33, Height = 17 };

        using Image<Rgb24> decoded = Image.Load<Rgb24>(image.ToPng(parameters));

        Assert.Equal(image.Pixels.ToArray(), decoded.ToRgbImage().Pixels.ToArray());
        PngTextData text = Assert.Single(decoded.Metadata.GetPngMetadata().TextData);
        Assert.Equal(("parameters", parameters.ToString()), (text.Keyword, text.Value));
    }

    private static RgbImage Noise(int width, int height)
    {
        var rgb = new byte[width * height * 3];
        new Random(width * 31 + height).NextBytes(rgb);
        return RgbImage.FromRgb(rgb, width, height);
    }
}
