using System.Numerics.Tensors;
using SixLabors.ImageSharp.PixelFormats;
using StableDiffusion.Pipelines.Internal;
using Xunit;

namespace StableDiffusion.Core.Tests.Pipelines;

public sealed class ImageOutputTests
{
    [Fact]
    public void ToImages_RoundsLikeNumpy_ForEveryValue()
    {
        // diffusers' numpy_to_pil: (x * 255).round().astype(uint8), rounding half to even.
        var random = new Random(5);
        float[] values = [.. Enumerable.Range(0, 2 * 16 * 16 * 3).Select(i => i < 256 ? i / 255f : (float)random.NextDouble())];
        var images = ImageOutput.ToImages(Tensor.Create(values, [2, 16, 16, 3]));

        for (int b = 0; b < 2; b++)
        {
            using var image = images[b];
            for (int y = 0; y < 16; y++)
            {
                for (int x = 0; x < 16; x++)
                {
                    int o = (((b * 16) + y) * 16 + x) * 3;
                    Rgb24 expected = new(Round(values[o]), Round(values[o + 1]), Round(values[o + 2]));
                    Assert.Equal(expected, image[x, y]);
                }
            }
        }
    }

    [Fact]
    public void ToNhwcUnitRange_MapsMinusOneToOneOntoZeroToOne_AndClamps()
    {
        float[] nchw = [-1f, 0f, 1f, 3f, /* green */ -3f, 0.5f, -0.5f, 1f, /* blue */ 0f, 0f, 0f, 0f];
        Tensor<float> nhwc = ImageOutput.ToNhwcUnitRange(Tensor.Create(nchw, [1, 3, 2, 2]));

        Assert.Equal([1, 2, 2, 3], nhwc.Lengths.ToArray());
        Assert.Equal([0f, 0f, 0.5f, 0.5f, 0.75f, 0.5f, 1f, 0.25f, 0.5f, 1f, 1f, 0.5f], nhwc.AsSpan().ToArray());
    }

    private static byte Round(float value) => (byte)MathF.Round(value * 255f, MidpointRounding.ToEven);
}
