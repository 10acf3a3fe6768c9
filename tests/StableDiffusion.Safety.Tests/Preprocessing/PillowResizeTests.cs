using System.Numerics.Tensors;
using System.Security.Cryptography;
using Xunit;

namespace StableDiffusion.Safety.Tests.Preprocessing;

/// <summary>
/// The PIL backend's resize against Pillow itself: the expected values are SHA-256 hashes of
/// <c>Image.frombytes("RGB", (w, h), pixels).resize((ow, oh), filter).tobytes()</c> computed with Pillow 9.4 on the
/// synthetic pixels of <see cref="Pixels"/> (integer arithmetic, so Python builds the same input).
/// </summary>
[Trait("Area", "Safety")]
public sealed class PillowResizeTests
{
    [Theory]
    [InlineData(512, 512, 224, 224, PilResampling.Bicubic, "bdc5d2770a14f8a85444e6b4587125cb9d9b01756f90638f2636092d0b4dd90d")]
    [InlineData(64, 96, 224, 336, PilResampling.Bicubic, "71c34606a67787916f35de29469fb6d0fa7621ca4ee601ea9eb0aeeb1bc2eef9")]
    [InlineData(96, 64, 336, 224, PilResampling.Bicubic, "264a04fb67c46fb6027cf245e39abded1ea39e3a55d4c044eb1dad7dce5d7165")]
    [InlineData(77, 131, 31, 53, PilResampling.Bicubic, "1c09bcd8d5d64c55e8005cdd7163a07f6c1688c746a379f3cd1e2687c33d60fe")]
    [InlineData(300, 17, 224, 13, PilResampling.Bicubic, "d8253306c64a978e85261daadb0de39273c0eae807593321c915eced850167a6")]
    [InlineData(9, 7, 40, 3, PilResampling.Bicubic, "2564cd7582078351cd009dfcd90100b423febee304bda97da466d9f3d2179847")]
    [InlineData(768, 512, 336, 224, PilResampling.Bicubic, "c655c7afc0198fb800cccb8ab219bf78cfccff4be59e903b52a7256b516d249f")]
    [InlineData(1, 1, 5, 7, PilResampling.Bicubic, "b0be8c250f2ecf63aae3f6ffa830b2bdb53ca84d596f2618e417ee5a60115dd9")]
    [InlineData(77, 131, 31, 53, PilResampling.Nearest, "b46faf4b7aa6ecfb44c68740351e6cf00b5add3996aca4997f6a7c075b346cc7")]
    [InlineData(77, 131, 31, 53, PilResampling.Lanczos, "f3f36771d0c33302cfb846a17c9168e5d7466868933540a5ce6401a86fad50fd")]
    [InlineData(77, 131, 31, 53, PilResampling.Bilinear, "522f571eee946af9c93161af3a478abea55ff3f0b9bb1e20ece429b74e77699a")]
    [InlineData(77, 131, 31, 53, PilResampling.Box, "d8c4430ccf8f192c25aa6c8d6938ff5f5d269935087d33e0e9ca35ce2ef26625")]
    [InlineData(77, 131, 31, 53, PilResampling.Hamming, "9fc63301f75b2eee6986c40d8e1afb03fd46b2fee317106234b2fd4ff64f79a6")]
    [InlineData(64, 96, 224, 336, PilResampling.Nearest, "bf071d06f9ec10ed9334e9b14858f7b55168b9efa23ba2c07a2de41f2844699a")]
    [InlineData(64, 96, 224, 336, PilResampling.Lanczos, "94e486170f37602d3c743e74e8562f0341ed9fb5e0f78b6f17d0bcf779b51ec4")]
    [InlineData(64, 96, 224, 336, PilResampling.Bilinear, "23c0ed8082baf409d542bf828f203896b922a12a3ff4237ddc138bc6b087504e")]
    [InlineData(64, 96, 224, 336, PilResampling.Box, "db23004d005dc195d39da581b7f4ae97a1ea997e9032f13b58a71ff7c71156a8")]
    [InlineData(64, 96, 224, 336, PilResampling.Hamming, "1b6867a599d708472397ca22a6c32b33f6eae8c2551f579a323a41fed9c6ae1b")]
    public void Resize_EqualsPillowBitForBit(int height, int width, int outHeight, int outWidth, PilResampling filter, string pillowSha256)
    {
        byte[] resized = Resize(Pixels(height, width), height, width, outHeight, outWidth, filter, ImageProcessorBackend.Pil);

        Assert.Equal(pillowSha256, Convert.ToHexStringLower(SHA256.HashData(resized)));
    }

    [Fact]
    public void TallImage_IsResizedVerticallyFirst_AsPillow12()
    {
        // Pillow 12.2 resizes images more than 100 times taller than wide vertically first: the same as a vertical-only
        // resize followed by a horizontal-only one (each pass rounds to 8 bits).
        const int height = 2020, width = 19, outHeight = 301, outWidth = 7;
        byte[] pixels = Pixels(height, width);

        byte[] direct = Resize(pixels, height, width, outHeight, outWidth, PilResampling.Bicubic, ImageProcessorBackend.Pil);
        byte[] vertical = Resize(pixels, height, width, outHeight, width, PilResampling.Bicubic, ImageProcessorBackend.Pil);
        byte[] twoSteps = Resize(vertical, outHeight, width, outHeight, outWidth, PilResampling.Bicubic, ImageProcessorBackend.Pil);

        Assert.Equal(twoSteps, direct);
    }

    [Theory]
    [InlineData(ImageProcessorBackend.Pil)]
    [InlineData(ImageProcessorBackend.Torchvision)]
    public void SameSize_LeavesPixelsUnchanged(ImageProcessorBackend backend)
    {
        byte[] pixels = Pixels(13, 29);

        Assert.Equal(pixels, Resize(pixels, 13, 29, 13, 29, PilResampling.Bicubic, backend));
    }

    [Theory]
    [InlineData(ImageProcessorBackend.Pil, 512, 512)]
    [InlineData(ImageProcessorBackend.Pil, 64, 96)]
    [InlineData(ImageProcessorBackend.Pil, 333, 517)]
    [InlineData(ImageProcessorBackend.Torchvision, 512, 512)]
    [InlineData(ImageProcessorBackend.Torchvision, 96, 64)]
    [InlineData(ImageProcessorBackend.Torchvision, 333, 517)]
    public void CenterCrop_OfResizedImage_EqualsCroppingTheFullResize(ImageProcessorBackend backend, int height, int width)
    {
        // The processor resizes only the pixels the crop keeps; they must equal the same window of the full resize.
        byte[] pixels = Pixels(height, width);
        var config = new ClipImageProcessorConfig { Backend = backend, DoRescale = false, DoNormalize = false };
        ImageSize resized = config.Size.GetOutputSize(height, width);
        byte[] full = Resize(pixels, height, width, resized.Height, resized.Width, PilResampling.Bicubic, backend);

        float[] cropped = Run(new ClipImageProcessor(config), pixels, height, width);

        int top = (resized.Height - 224) / 2, left = (resized.Width - 224) / 2;
        for (int c = 0; c < 3; c++)
        {
            for (int y = 0; y < 224; y++)
            {
                for (int x = 0; x < 224; x++)
                {
                    Assert.Equal(full[((((y + top) * resized.Width) + x + left) * 3) + c], cropped[(((c * 224) + y) * 224) + x]);
                }
            }
        }
    }

    /// <summary>Synthetic RGB pixels: a gradient with wrap-around edges and hashed noise, in integer arithmetic.</summary>
    internal static byte[] Pixels(int height, int width)
    {
        var pixels = new byte[height * width * 3];
        for (int i = 0; i < pixels.Length; i++)
        {
            long x = i / 3 % width, y = i / 3 / width, c = i % 3;
            long noise = ((i * 2654435761L) & 0xFFFFFFFFL) >> 27;
            pixels[i] = (byte)((((x * 255) / Math.Max(1, width - 1)) + (y * 3) + (c * 40) + noise) % 256);
        }

        return pixels;
    }

    /// <summary>Resizes through the public processor with nothing else enabled, so its output is the 8-bit result.</summary>
    private static byte[] Resize(byte[] pixels, int height, int width, int outHeight, int outWidth, PilResampling filter, ImageProcessorBackend backend)
    {
        var config = new ClipImageProcessorConfig
        {
            Backend = backend,
            Resample = filter,
            Size = ResizeTarget.ToSize(outHeight, outWidth),
            DoCenterCrop = false,
            DoRescale = false,
            DoNormalize = false,
        };
        float[] planar = Run(new ClipImageProcessor(config), pixels, height, width);
        int plane = outHeight * outWidth;
        var interleaved = new byte[plane * 3];
        for (int i = 0; i < plane; i++)
        {
            for (int c = 0; c < 3; c++)
            {
                interleaved[(i * 3) + c] = checked((byte)planar[(c * plane) + i]);
            }
        }

        return interleaved;
    }

    private static float[] Run(ClipImageProcessor processor, byte[] pixels, int height, int width)
    {
        // level / 255 quantises back to the same level, so the processor sees exactly these pixels.
        float[] values = [.. pixels.Select(b => b / 255f)];
        return ClipImageProcessorTests.Flatten(processor.Preprocess(Tensor.Create(values, [1, height, width, 3])));
    }
}
