using System.Numerics.Tensors;
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
            ReadOnlySpan<byte> pixels = images[b].Pixels.Span;
            for (int i = 0; i < 16 * 16 * 3; i++)
            {
                Assert.Equal(Round(values[(b * 16 * 16 * 3) + i]), pixels[i]);
            }
        }
    }

    [Fact]
    public void ToImages_RoundsExactHalvesToEven()
    {
        // Values whose float32 product with 255 is exactly k + 0.5: numpy's round takes the even level.
        (float Value, float Product, byte Level)[] ties =
        [
            (0.0019607844f, 0.5f, 0), (0.005882353f, 1.5f, 2), (0.009803922f, 2.5f, 2), (0.01372549f, 3.5f, 4),
            (0.49607843f, 126.5f, 126), (0.5f, 127.5f, 128), (0.50392157f, 128.5f, 128), (0.50784314f, 129.5f, 130),
            (0.99019605f, 252.5f, 252), (0.9941176f, 253.5f, 254), (0.9980392f, 254.5f, 254), (0.021568628f, 5.5f, 6),
        ];
        Assert.All(ties, t => Assert.Equal(t.Product, t.Value * 255f));

        var image = ImageOutput.ToImages(Tensor.Create(ties.Select(t => t.Value).ToArray(), [1, 1, 4, 3]))[0];

        Assert.Equal(ties.Select(t => t.Level), image.Pixels.ToArray());
    }

    [Fact]
    public void ToNhwcUnitRange_MapsMinusOneToOneOntoZeroToOne_AndClamps()
    {
        float[] nchw = [-1f, 0f, 1f, 3f, /* green */ -3f, 0.5f, -0.5f, 1f, /* blue */ 0f, 0f, 0f, 0f];
        Tensor<float> nhwc = ImageOutput.ToNhwcUnitRange(Tensor.Create(nchw, [1, 3, 2, 2]));

        Assert.Equal([1, 2, 2, 3], nhwc.Lengths.ToArray());
        Assert.Equal([0f, 0f, 0.5f, 0.5f, 0.75f, 0.5f, 1f, 0.25f, 0.5f, 1f, 1f, 0.5f], nhwc.AsSpan().ToArray());
    }

    [Fact]
    public void ToNhwcUnitRange_OnABatchOfOddSizes_GivesEveryValueOfThePerElementFormula()
    {
        // Two images of 3 x 7 x 5, values beyond [-1, 1] included: each output is clamp(x * 0.5 + 0.5, 0, 1) of its input,
        // bit for bit, at its interleaved place, whichever row of whichever image a worker handled.
        const int batch = 2, channels = 3, height = 7, width = 5;
        var random = new Random(11);
        float[] nchw = [.. Enumerable.Range(0, batch * channels * height * width).Select(_ => (random.NextSingle() * 3) - 1.5f)];
        float[] nhwc = ImageOutput.ToNhwcUnitRange(Tensor.Create(nchw, [batch, channels, height, width])).AsSpan().ToArray();

        for (int b = 0; b < batch; b++)
        {
            for (int c = 0; c < channels; c++)
            {
                for (int p = 0; p < height * width; p++)
                {
                    float x = nchw[(((b * channels) + c) * height * width) + p];
                    Assert.Equal(Math.Clamp((x * 0.5f) + 0.5f, 0f, 1f), nhwc[(((b * height * width) + p) * channels) + c]);
                }
            }
        }
    }

    private static byte Round(float value) => (byte)MathF.Round(value * 255f, MidpointRounding.ToEven);
}
