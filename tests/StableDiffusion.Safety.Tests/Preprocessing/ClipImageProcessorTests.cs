using System.Buffers;
using System.Numerics.Tensors;
using Xunit;

namespace StableDiffusion.Safety.Tests.Preprocessing;

[Trait("Area", "Safety")]
public sealed class ClipImageProcessorTests
{
    /// <summary>A processor whose output is the 8-bit level of each pixel: no resize, no rescale, no normalisation.</summary>
    private static readonly ClipImageProcessorConfig LevelsOnly = new() { DoResize = false, DoCenterCrop = false, DoRescale = false, DoNormalize = false };

    [Fact]
    public void Preprocess_Sd15Defaults_GivesNchwAt224()
    {
        var processor = new ClipImageProcessor(ClipImageProcessorConfig.Default);

        Tensor<float> output = processor.Preprocess(Gray(3, 64, 96, 0.5f));

        Assert.Equal([3, 3, 224, 224], output.Lengths.ToArray());
        Assert.Equal(new ImageSize(224, 224), processor.GetOutputSize(64, 96));
    }

    [Fact]
    public void Preprocess_KeepsChannelOrderRgbInPlanes()
    {
        var processor = new ClipImageProcessor(LevelsOnly);
        float[] pixels = [10 / 255f, 20 / 255f, 30 / 255f, 40 / 255f, 50 / 255f, 60 / 255f]; // one row, two pixels

        float[] output = Flatten(processor.Preprocess(Tensor.Create(pixels, [1, 1, 2, 3])));

        Assert.Equal([10f, 40f, 20f, 50f, 30f, 60f], output);
    }

    [Fact]
    public void Quantize_RoundsHalfToEven_AsNumpy()
    {
        // Find float32 values whose x * 255 is exactly k + 0.5, as numpy_to_pil computes it in float32.
        var ties = new List<(float Value, int Expected)>();
        for (int k = 0; k < 255; k++)
        {
            float x = (k + 0.5f) / 255f;
            for (int step = -4; step <= 4; step++)
            {
                float candidate = Nudge(x, step);
                if (candidate * 255f == k + 0.5f)
                {
                    ties.Add((candidate, k % 2 == 0 ? k : k + 1));
                    break;
                }
            }
        }

        Assert.Contains(ties, t => t.Expected % 2 == 0 && t.Expected == (int)(t.Value * 255f)); // ties that round down
        Assert.Contains(ties, t => t.Expected == (int)(t.Value * 255f) + 1);                    // ties that round up
        var bytes = new byte[ties.Count];
        ClipImageProcessor.QuantizeToBytes([.. ties.Select(t => t.Value)], bytes);
        Assert.Equal(ties.Select(t => (byte)t.Expected), bytes);

        // Through the public API as well: one pixel per tie, the tie in every channel.
        float[] pixels = [.. ties.SelectMany(t => new[] { t.Value, t.Value, t.Value })];
        float[] levels = Flatten(new ClipImageProcessor(LevelsOnly).Preprocess(Tensor.Create(pixels, [1, 1, ties.Count, 3])));
        Assert.Equal(ties.Select(t => (float)t.Expected), levels[..ties.Count]);
    }

    [Fact]
    public void Quantize_EveryLevelOver255_ComesBackAsThatLevel()
    {
        // What lets 8-bit pictures go through the float path unchanged.
        float[] values = [.. Enumerable.Range(0, 256).Select(level => level / 255f)];
        var bytes = new byte[256];

        ClipImageProcessor.QuantizeToBytes(values, bytes);

        Assert.Equal(Enumerable.Range(0, 256).Select(level => (byte)level), bytes);
    }

    [Theory]
    [InlineData(ImageProcessorBackend.Pil, 5, 8, 3, 4, 1, 2)]
    [InlineData(ImageProcessorBackend.Torchvision, 5, 8, 3, 4, 1, 2)]
    [InlineData(ImageProcessorBackend.Pil, 6, 9, 3, 4, 1, 2)]         // odd margins inside the image round down
    [InlineData(ImageProcessorBackend.Torchvision, 6, 9, 3, 4, 1, 2)]
    [InlineData(ImageProcessorBackend.Pil, 3, 3, 6, 6, -2, -2)]        // crop larger than the image by an odd 3: PIL floors -1.5
    [InlineData(ImageProcessorBackend.Torchvision, 3, 3, 6, 6, -1, -1)] // torchvision pads floor(3 / 2) = 1 before
    [InlineData(ImageProcessorBackend.Pil, 3, 10, 6, 4, -2, 3)]
    [InlineData(ImageProcessorBackend.Torchvision, 3, 10, 6, 4, -1, 3)]
    public void CenterCrop_PlacesTheWindowAsTheBackendDoes(ImageProcessorBackend backend, int height, int width, int cropHeight, int cropWidth, int top, int left)
    {
        var processor = new ClipImageProcessor(LevelsOnly with { DoCenterCrop = true, CropSize = new ImageSize(cropHeight, cropWidth), Backend = backend });
        float[] pixels = new float[height * width * 3];
        for (int i = 0; i < pixels.Length; i++)
        {
            pixels[i] = (1 + (i % 250)) / 255f; // every level >= 1, so the zero padding stands out
        }

        float[] output = Flatten(processor.Preprocess(Tensor.Create(pixels, [1, height, width, 3])));

        for (int c = 0; c < 3; c++)
        {
            for (int y = 0; y < cropHeight; y++)
            {
                for (int x = 0; x < cropWidth; x++)
                {
                    int sy = y + top, sx = x + left;
                    float expected = sy >= 0 && sy < height && sx >= 0 && sx < width ? 1 + ((((sy * width) + sx) * 3) + c) % 250 : 0;
                    Assert.Equal(expected, output[(((c * cropHeight) + y) * cropWidth) + x]);
                }
            }
        }
    }

    [Theory]
    [InlineData(ImageProcessorBackend.Torchvision)]
    [InlineData(ImageProcessorBackend.Pil)]
    public void Normalize_UsesClipMeanAndStd(ImageProcessorBackend backend)
    {
        var processor = new ClipImageProcessor(ClipImageProcessorConfig.Default with { DoResize = false, DoCenterCrop = false, Backend = backend });

        float[] output = Flatten(processor.Preprocess(Gray(1, 1, 1, 1f)));

        // (1 - mean) / std per channel, to float32 rounding of either backend's order of operations.
        Assert.Equal((1 - 0.48145466) / 0.26862954, output[0], 1e-6);
        Assert.Equal((1 - 0.4578275) / 0.26130258, output[1], 1e-6);
        Assert.Equal((1 - 0.40821073) / 0.27577711, output[2], 1e-6);
    }

    [Theory]
    [InlineData(new int[] { 64, 64, 3 }, "rank-4")]
    [InlineData(new int[] { 1, 64, 64, 4 }, "3 (RGB) channels")]
    [InlineData(new int[] { 1, 3, 64, 64 }, "transpose it to NHWC")]
    [InlineData(new int[] { 0, 64, 64, 3 }, "must not be empty")]
    [InlineData(new int[] { 1, 0, 64, 3 }, "must not be empty")]
    public void Preprocess_WrongShape_ThrowsArgumentException(int[] shape, string expected)
    {
        var processor = new ClipImageProcessor(ClipImageProcessorConfig.Default);
        float[] values = new float[shape.Aggregate(1, (a, b) => a * b)];

        var ex = Assert.Throws<ArgumentException>(() => processor.Preprocess(Tensor.Create(values, [.. shape.Select(d => (nint)d)])));

        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.Equal("images", ex.ParamName);
    }

    [Theory]
    [InlineData(float.NaN, "NaN")]
    [InlineData(1.5f, "1.5")]
    [InlineData(-0.25f, "-0.25")]
    [InlineData(float.PositiveInfinity, "Infinity")]
    public void Preprocess_ValueOutsideZeroToOne_ThrowsNamingTheImage(float bad, string shown)
    {
        var processor = new ClipImageProcessor(ClipImageProcessorConfig.Default);
        Tensor<float> images = Gray(3, 8, 8, 0.5f);
        images[2, 4, 5, 1] = bad;

        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => processor.Preprocess(images));

        Assert.Contains("image 2", ex.Message, StringComparison.Ordinal);
        Assert.Contains(shown, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Preprocess_StridedView_ThrowsAskingForADenseTensor()
    {
        var processor = new ClipImageProcessor(ClipImageProcessorConfig.Default);
        Tensor<float> images = Gray(1, 8, 8, 0.5f);

        var ex = Assert.Throws<ArgumentException>(
            () => processor.Preprocess(images.AsReadOnlyTensorSpan().Slice([NRange.All, NRange.All, new NRange(0, 4), NRange.All])));

        Assert.Contains("dense", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Preprocess_RgbPixels_EqualsTheTensorOfThosePixels()
    {
        byte[] pixels = PillowResizeTests.Pixels(77, 131);
        var processor = new ClipImageProcessor(ClipImageProcessorConfig.Default);

        float[] fromPixels = Flatten(processor.Preprocess(pixels, 131, 77));
        float[] fromTensor = Flatten(processor.Preprocess(Tensor.Create(pixels.Select(b => b / 255f).ToArray(), [1, 77, 131, 3])));

        Assert.Equal(fromTensor, fromPixels);
    }

    [Theory]
    [InlineData(8, 8, 191, "A 8x8 RGB image has 192 bytes (3 per pixel, no row padding), but 191 were given.")]
    [InlineData(4, 2, 32, "A 4x2 RGB image has 24 bytes (3 per pixel, no row padding), but 32 were given.")]
    public void Preprocess_PixelsOfTheWrongLength_SaysWhatWasExpected(int width, int height, int length, string message)
    {
        var processor = new ClipImageProcessor(ClipImageProcessorConfig.Default);

        var ex = Assert.Throws<ArgumentException>(() => processor.Preprocess(new byte[length], width, height));

        Assert.StartsWith(message, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Preprocess_FromSeveralThreads_GivesTheSequentialResults()
    {
        var processor = new ClipImageProcessor(ClipImageProcessorConfig.Default);
        (int Height, int Width)[] sizes = [(64, 96), (96, 64), (512, 512), (77, 131)];
        Tensor<float>[] inputs = [.. sizes.Select(s => Tensor.Create(PillowResizeTests.Pixels(s.Height, s.Width).Select(b => b / 255f).ToArray(), [1, s.Height, s.Width, 3]))];
        float[][] expected = [.. inputs.Select(i => Flatten(new ClipImageProcessor(ClipImageProcessorConfig.Default).Preprocess(i)))];

        var results = new float[64][];
        Parallel.For(0, results.Length, i => results[i] = Flatten(processor.Preprocess(inputs[i % inputs.Length])));

        for (int i = 0; i < results.Length; i++)
        {
            Assert.Equal(expected[i % inputs.Length], results[i]);
        }
    }

    internal static Tensor<float> Gray(int batch, int height, int width, params float[] levels)
    {
        var values = new float[batch * height * width * 3];
        int imageLength = height * width * 3;
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = levels[Math.Min(i / imageLength, levels.Length - 1)];
        }

        return Tensor.Create(values, [batch, height, width, 3]);
    }

    internal static float[] Flatten(Tensor<float> tensor)
    {
        var values = new float[tensor.FlattenedLength];
        tensor.FlattenTo(values);
        return values;
    }

    private static float Nudge(float x, int steps)
    {
        for (; steps > 0; steps--)
        {
            x = MathF.BitIncrement(x);
        }

        for (; steps < 0; steps++)
        {
            x = MathF.BitDecrement(x);
        }

        return x;
    }
}
