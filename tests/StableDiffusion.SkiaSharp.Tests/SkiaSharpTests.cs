using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Hashing;
using SkiaSharp;
using StableDiffusion.Imaging;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.SkiaSharp.Tests;

/// <summary>RgbImage to and from SkiaSharp; decoding with limits checked before decoding; JPEG and WebP encoding.</summary>
[Trait("Area", "Images")]
public sealed class SkiaSharpTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(7, 5)]
    [InlineData(300, 211)]
    public void ToSKBitmapAndSKImage_ThenBack_KeepEveryPixel(int width, int height)
    {
        RgbImage image = Noise(width, height);

        using SKBitmap bitmap = image.ToSKBitmap();
        using SKImage skImage = image.ToSKImage();

        Assert.Equal((width, height), (bitmap.Width, bitmap.Height));
        ReadOnlySpan<byte> pixels = image.Pixels.Span;
        Assert.Equal(new SKColor(pixels[0], pixels[1], pixels[2]), bitmap.GetPixel(0, 0));
        Assert.Equal(image.Pixels.ToArray(), bitmap.ToRgbImage().Pixels.ToArray());
        Assert.Equal(image.Pixels.ToArray(), skImage.ToRgbImage().Pixels.ToArray());
    }

    [Fact]
    public void ToRgbImage_ReadsOtherColourTypes_AndRefusesTransparencyUnlessIgnored()
    {
        using var bgra = new SKBitmap(new SKImageInfo(2, 1, SKColorType.Bgra8888, SKAlphaType.Unpremul));
        bgra.SetPixel(0, 0, new SKColor(10, 20, 30, 255));
        bgra.SetPixel(1, 0, new SKColor(40, 50, 60, 128));

        var ex = Assert.Throws<ArgumentException>(() => bgra.ToRgbImage());

        Assert.StartsWith("The image has transparent pixels (alpha 128 at x 1, y 0)", ex.Message, StringComparison.Ordinal);
        Assert.Equal([10, 20, 30, 40, 50, 60], bgra.ToRgbImage(ignoreAlpha: true).Pixels.ToArray());
    }

    [Fact]
    public void Decode_ReadsTheCoresPng()
    {
        RgbImage image = Noise(65, 33);

        RgbImage decoded = SkiaImageCodec.Decode(new MemoryStream(image.ToPng()));

        Assert.Equal(image.Pixels.ToArray(), decoded.Pixels.ToArray());
    }

    [Theory]
    [InlineData(SKEncodedImageFormat.Jpeg, 8)]
    [InlineData(SKEncodedImageFormat.Webp, 8)]
    [InlineData(SKEncodedImageFormat.Png, 0)]
    public void Encode_ThenDecode_GivesThePictureBack(SKEncodedImageFormat format, int tolerance)
    {
        RgbImage smooth = Gradient(64, 48);

        byte[] encoded = SkiaImageCodec.Encode(smooth, format, quality: 95);
        RgbImage decoded = SkiaImageCodec.Decode(new MemoryStream(encoded));

        using SKCodec codec = SKCodec.Create(new MemoryStream(encoded));
        Assert.Equal(format, codec.EncodedFormat);
        Assert.Equal((64, 48), (decoded.Width, decoded.Height));
        Assert.All(smooth.Pixels.ToArray().Zip(decoded.Pixels.ToArray()), p => Assert.InRange(Math.Abs(p.First - p.Second), 0, tolerance));
    }

    [Theory]
    [InlineData(100_000, 10, "The image is 100000x10 pixels; at most 8192x8192 is accepted. Scale it down first.")]
    [InlineData(8000, 8000, "The image is 8000x8000, 64,000,000 pixels; at most 33,554,432 pixels are accepted. Scale it down first.")]
    public void Decode_ChecksTheHeaderAgainstTheLimits_BeforeDecoding(int width, int height, string message)
    {
        // A valid header declaring a huge image, over a few bytes of data: a decoder that allocated first would need gigabytes.
        byte[] bomb = PngHeaderOnly(width, height);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var watch = Stopwatch.StartNew();

        var ex = Assert.Throws<InvalidDataException>(() => SkiaImageCodec.Decode(new MemoryStream(bomb)));

        Assert.Equal(message, ex.Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "nothing image-sized was allocated");
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5));
    }

    [Fact]
    public void Decode_WithTighterLimits_RefusesWhatTheDefaultsAccept()
    {
        byte[] png = Noise(40, 30).ToPng();
        var limits = new ImageDecodeLimits { MaxWidth = 1024, MaxHeight = 1024, MaxPixels = 1000 };

        var ex = Assert.Throws<InvalidDataException>(() => SkiaImageCodec.Decode(new MemoryStream(png), limits));

        Assert.Equal("The image is 40x30, 1,200 pixels; at most 1,000 pixels are accepted. Scale it down first.", ex.Message);
    }

    [Fact]
    public void Decode_OfSomethingElse_OrATruncatedFile_SaysWhich()
    {
        byte[] png = Noise(64, 64).ToPng();

        var notAnImage = Assert.Throws<InvalidDataException>(() => SkiaImageCodec.Decode(new MemoryStream("just some text"u8.ToArray())));
        var truncated = Assert.Throws<InvalidDataException>(() => SkiaImageCodec.Decode(new MemoryStream(png[..(png.Length / 2)])));

        Assert.StartsWith("This is not an image that can be read (PNG, JPEG, WebP, GIF or BMP)", notAnImage.Message, StringComparison.Ordinal);
        Assert.Equal("The 64x64 image is truncated: the file ends before its last pixels.", truncated.Message);
    }

    [Fact]
    public void Decode_OfATransparentPng_RefusesIt_UnlessItIsAMask()
    {
        using var bitmap = new SKBitmap(new SKImageInfo(2, 2, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        bitmap.Erase(new SKColor(255, 255, 255, 0));
        using SKData png = bitmap.Encode(SKEncodedImageFormat.Png, 100);

        Assert.Throws<ArgumentException>(() => SkiaImageCodec.Decode(new MemoryStream(png.ToArray())));
        Assert.Equal(12, SkiaImageCodec.Decode(new MemoryStream(png.ToArray()), ignoreAlpha: true).Pixels.Length);
    }

    // Stored quadrants: top-left red, top-right green, bottom-left blue, bottom-right white. Expected: the quadrants as
    // shown, in the same order, for each EXIF orientation (the meaning the EXIF standard gives each value).
    [Theory]
    [InlineData(1, "RGBW")]
    [InlineData(2, "GRWB")] // mirrored left to right
    [InlineData(3, "WBGR")] // turned half a turn
    [InlineData(4, "BWRG")] // mirrored top to bottom
    [InlineData(5, "RBGW")] // transposed
    [InlineData(6, "BRWG")] // to be turned a quarter clockwise
    [InlineData(7, "WGBR")] // transversed
    [InlineData(8, "GWRB")] // to be turned a quarter anticlockwise
    public void Decode_OfAJpegWithAnExifOrientation_GivesThePictureUpright(int orientation, string quadrants)
    {
        byte[] jpeg = JpegExif.WithOrientation(SkiaImageCodec.Encode(Quadrants(32, 16), SKEncodedImageFormat.Jpeg, quality: 100), orientation);

        RgbImage decoded = SkiaImageCodec.Decode(new MemoryStream(jpeg));

        (int width, int height) = orientation >= 5 ? (16, 32) : (32, 16);
        Assert.Equal((width, height), (decoded.Width, decoded.Height));
        (int X, int Y)[] centres = [(width / 4, height / 4), (3 * width / 4, height / 4), (width / 4, 3 * height / 4), (3 * width / 4, 3 * height / 4)];
        for (int q = 0; q < 4; q++)
        {
            int at = ((centres[q].Y * width) + centres[q].X) * 3;
            byte[] expected = QuadrantColours[quadrants[q]];
            for (int c = 0; c < 3; c++)
            {
                Assert.InRange(decoded.Pixels.Span[at + c], Math.Max(0, expected[c] - 16), Math.Min(255, expected[c] + 16));
            }
        }
    }

    [Fact]
    public void Decode_ChecksTheLimits_OnTheUprightSize()
    {
        byte[] jpeg = JpegExif.WithOrientation(SkiaImageCodec.Encode(Quadrants(32, 16), SKEncodedImageFormat.Jpeg), 6);
        var limits = new ImageDecodeLimits { MaxWidth = 20, MaxHeight = 40, MaxPixels = 1000 };

        RgbImage upright = SkiaImageCodec.Decode(new MemoryStream(jpeg), limits);

        Assert.Equal((16, 32), (upright.Width, upright.Height));
    }

    private static readonly Dictionary<char, byte[]> QuadrantColours = new()
    {
        ['R'] = [255, 0, 0], ['G'] = [0, 255, 0], ['B'] = [0, 0, 255], ['W'] = [255, 255, 255],
    };

    private static RgbImage Quadrants(int width, int height)
    {
        var rgb = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                char quadrant = "RGBW"[(y < height / 2 ? 0 : 2) + (x < width / 2 ? 0 : 1)];
                QuadrantColours[quadrant].CopyTo(rgb, ((y * width) + x) * 3);
            }
        }

        return RgbImage.FromRgb(rgb, width, height);
    }

    private static RgbImage Noise(int width, int height)
    {
        var rgb = new byte[width * height * 3];
        new Random(width * 31 + height).NextBytes(rgb);
        return RgbImage.FromRgb(rgb, width, height);
    }

    private static RgbImage Gradient(int width, int height)
    {
        var rgb = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                int o = ((y * width) + x) * 3;
                (rgb[o], rgb[o + 1], rgb[o + 2]) = ((byte)(x * 4), (byte)(y * 5), 128);
            }
        }

        return RgbImage.FromRgb(rgb, width, height);
    }

    /// <summary>A PNG signature and IHDR for the given size, then one tiny IDAT: a "decompression bomb" header.</summary>
    private static byte[] PngHeaderOnly(int width, int height)
    {
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8;
        ihdr[9] = 2;
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, .. Chunk("IHDR", ihdr), .. Chunk("IDAT", [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]), .. Chunk("IEND", [])];
    }

    private static byte[] Chunk(string type, byte[] data)
    {
        byte[] typeAndData = [.. System.Text.Encoding.ASCII.GetBytes(type), .. data];
        var chunk = new byte[12 + data.Length];
        BinaryPrimitives.WriteInt32BigEndian(chunk, data.Length);
        typeAndData.CopyTo(chunk, 4);
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(8 + data.Length), Crc32.HashToUInt32(typeAndData));
        return chunk;
    }
}
