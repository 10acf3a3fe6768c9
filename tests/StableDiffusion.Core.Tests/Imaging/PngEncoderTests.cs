using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using SkiaSharp;
using StableDiffusion.Imaging;
using StableDiffusion.Pipelines;
using Xunit;

namespace StableDiffusion.Core.Tests.Imaging;

/// <summary>
/// The core's own PNG writer: what it writes decodes to the same pixels in an independent decoder (SkiaSharp), every chunk
/// carries a correct CRC (checked with a CRC-32 written here, not the library the writer uses), and the parameters chunk
/// comes back exactly, in Latin-1 (tEXt) or any script (iTXt).
/// </summary>
[Trait("Area", "Images")]
public sealed class PngEncoderTests : IDisposable
{
    private static readonly GenerationParameters Parameters = new()
    {
        Prompt = "a photo of an astronaut riding a horse on mars",
        NegativePrompt = "blurry, low quality",
        NumInferenceSteps = 25,
        Sampler = "DPM++ 2M Karras",
        GuidanceScale = 6.5f,
        Seed = 42,
        Width = 5,
        Height = 3,
        Model = "onnx-community/stable-diffusion-v1-5-ONNX",
        Strength = 0.75,
    };

    private readonly string _folder = Directory.CreateTempSubdirectory("sd-png-tests-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    public static TheoryData<int, int, int> Sizes => new()
    {
        { 1, 1, 1 }, { 5, 3, 2 }, { 64, 64, 3 }, { 67, 13, 4 }, { 300, 257, 5 },
    };

    [Theory]
    [MemberData(nameof(Sizes))]
    public void ToPng_DecodesToTheSamePixels_InAnIndependentDecoder(int width, int height, int seed)
    {
        RgbImage image = Noise(width, height, seed);

        byte[] png = image.ToPng(Parameters);

        using SKBitmap decoded = SKBitmap.Decode(png);
        Assert.NotNull(decoded);
        Assert.Equal((width, height), (decoded.Width, decoded.Height));
        ReadOnlySpan<byte> pixels = image.Pixels.Span;
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                SKColor color = decoded.GetPixel(x, y);
                int o = ((y * width) + x) * 3;
                Assert.Equal((pixels[o], pixels[o + 1], pixels[o + 2], (byte)255), (color.Red, color.Green, color.Blue, color.Alpha));
            }
        }
    }

    [Fact]
    public void ToPng_WritesIhdrTextIdatIend_EachWithAValidCrc()
    {
        byte[] png = Noise(300, 257, 1).ToPng(Parameters);

        List<(string Type, byte[] Data)> chunks = Chunks(png);

        Assert.Equal("IHDR", chunks[0].Type);
        Assert.Equal([0, 0, 1, 44, 0, 0, 1, 1, 8, 2, 0, 0, 0], chunks[0].Data); // 300 x 257, 8-bit RGB, deflate, adaptive filters, no interlace
        Assert.Equal("tEXt", chunks[1].Type);
        Assert.Equal("IEND", chunks[^1].Type);
        Assert.True(chunks.Count(c => c.Type == "IDAT") > 1); // 300 x 257 noise does not fit one 64 KiB IDAT
        Assert.All(chunks[2..^1], c => Assert.Equal("IDAT", c.Type));
    }

    [Fact]
    public void ParametersChunk_IsTheWebUiText_InLatin1()
    {
        byte[] png = Noise(5, 3, 1).ToPng(Parameters);

        (string type, byte[] data) = Assert.Single(Chunks(png), c => c.Type is "tEXt" or "iTXt" or "zTXt");

        Assert.Equal("tEXt", type);
        Assert.Equal($"parameters\0{Parameters}", Encoding.Latin1.GetString(data));
        Assert.Equal(
            "a photo of an astronaut riding a horse on mars\nNegative prompt: blurry, low quality\nSteps: 25, Sampler: DPM++ 2M Karras, CFG scale: 6.5, Seed: 42, " +
            "Size: 5x3, Model: onnx-community/stable-diffusion-v1-5-ONNX, Denoising strength: 0.75",
            Parameters.ToString());
    }

    [Theory]
    [InlineData("宇宙飛行士が火星で馬に乗っている写真")]
    [InlineData("a rocket 🚀 over a café")]
    public void AParameterOutsideLatin1_IsWrittenAsUtf8ITxt_AndReadBack(string prompt)
    {
        GenerationParameters parameters = Parameters with { Prompt = prompt };

        byte[] png = Noise(5, 3, 1).ToPng(parameters);

        (string type, _) = Assert.Single(Chunks(png), c => c.Type is "tEXt" or "iTXt" or "zTXt");
        Assert.Equal("iTXt", type);
        Assert.Equal(parameters, GenerationParameters.FromPng(new MemoryStream(png)), ParametersComparer.Instance);
    }

    [Fact]
    public void WithoutParameters_ThereIsNoTextChunk_AndFromPngSaysSo()
    {
        byte[] png = Noise(5, 3, 1).ToPng();

        Assert.DoesNotContain(Chunks(png), c => c.Type is "tEXt" or "iTXt" or "zTXt");
        Assert.Null(GenerationParameters.FromPng(new MemoryStream(png)));
    }

    [Theory]
    [InlineData("zTXt")]
    [InlineData("iTXt")]
    public void FromPng_ReadsCompressedChunks_AsOtherToolsWriteThem(string type)
    {
        // What Pillow writes for a long text with zip=True, or an iTXt compressed by another tool, after a chunk of its own.
        byte[] text = type == "zTXt" ? Encoding.Latin1.GetBytes(Parameters.ToString()) : Encoding.UTF8.GetBytes(Parameters.ToString());
        byte[] compressed = Deflate(text);
        byte[] body = type == "zTXt" ? [.. "parameters"u8, 0, 0, .. compressed] : [.. "parameters"u8, 0, 1, 0, .. "en"u8, 0, 0, .. compressed];
        byte[] png = Insert(Noise(5, 3, 1).ToPng(), ("tIME", [7, 234, 12, 1, 0, 0, 0]), (type, body));

        Assert.Equal(Parameters, GenerationParameters.FromPng(new MemoryStream(png)), ParametersComparer.Instance);
    }

    [Fact]
    public void FromPng_OnlyTakesTheParametersKeyword()
    {
        byte[] png = Insert(Noise(5, 3, 1).ToPng(Parameters), ("tEXt", [.. "Comment"u8, 0, .. "Steps: 1, Size: 1x1"u8]));

        Assert.Equal(25, GenerationParameters.FromPng(new MemoryStream(png))!.NumInferenceSteps);
    }

    [Theory]
    [InlineData("not a png at all", "This is not a PNG file: it does not start with the PNG signature.")]
    [InlineData("truncated", "The PNG file is truncated")]
    [InlineData("bad crc", "The PNG file is corrupt: its tEXt chunk fails its CRC check.")]
    public void FromPng_OfABrokenFile_SaysWhatIsWrong(string kind, string message)
    {
        byte[] png = Noise(5, 3, 1).ToPng(Parameters);
        byte[] broken = kind switch
        {
            "not a png at all" => "GIF89a and so on"u8.ToArray(),
            "truncated" => png[..40],
            _ => CorruptText(png),
        };

        var ex = Assert.Throws<InvalidDataException>(() => GenerationParameters.FromPng(new MemoryStream(broken)));

        Assert.StartsWith(message, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SaveAsPng_ToAPathOrStream_SyncOrAsync_WritesTheSameBytes()
    {
        RgbImage image = Noise(17, 9, 3);
        byte[] expected = image.ToPng(Parameters);
        string sync = Path.Combine(_folder, "sub", "sync.png"), asynchronous = Path.Combine(_folder, "async.png");

        image.SaveAsPng(sync, Parameters);
        await image.SaveAsPngAsync(asynchronous, Parameters, TestContext.Current.CancellationToken);
        using var stream = new MemoryStream();
        image.SaveAsPng(stream, Parameters);
        using var asyncStream = new MemoryStream();
        await image.SaveAsPngAsync(asyncStream, Parameters, TestContext.Current.CancellationToken);

        Assert.Equal(expected, await File.ReadAllBytesAsync(sync, TestContext.Current.CancellationToken));
        Assert.Equal(expected, await File.ReadAllBytesAsync(asynchronous, TestContext.Current.CancellationToken));
        Assert.Equal(expected, stream.ToArray());
        Assert.Equal(expected, asyncStream.ToArray());
        Assert.Equal(["async.png", "sub"], Directory.EnumerateFileSystemEntries(_folder).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void SaveAsPng_ReplacesAFile_ButNotAFolder()
    {
        string file = Path.Combine(_folder, "image.png");
        File.WriteAllText(file, "old");

        Noise(2, 2, 1).SaveAsPng(file);
        var ex = Assert.Throws<IOException>(() => Noise(2, 2, 1).SaveAsPng(_folder));

        Assert.Equal(Noise(2, 2, 1).ToPng(), File.ReadAllBytes(file));
        Assert.Equal($"'{_folder}' is a folder; give the path of the PNG file to write.", ex.Message);
        Assert.Equal(["image.png"], Directory.EnumerateFileSystemEntries(_folder).Select(Path.GetFileName));
    }

    [Fact]
    public void ASmoothImage_CompressesFarBelowItsRawSize()
    {
        // Adaptive filtering: a gradient is nearly all zero differences.
        var rgb = new byte[512 * 512 * 3];
        for (int i = 0; i < rgb.Length; i++)
        {
            rgb[i] = (byte)((i / 3 % 512) / 2);
        }

        Assert.True(RgbImage.FromRgb(rgb, 512, 512).ToPng().Length < rgb.Length / 50);
    }

    internal static RgbImage Noise(int width, int height, int seed)
    {
        var rgb = new byte[width * height * 3];
        new Random(seed).NextBytes(rgb);
        return RgbImage.FromRgb(rgb, width, height);
    }

    private static List<(string Type, byte[] Data)> Chunks(byte[] png)
    {
        Assert.Equal([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], png[..8]);
        var chunks = new List<(string, byte[])>();
        for (int at = 8; at < png.Length;)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(at));
            byte[] typeAndData = png[(at + 4)..(at + 8 + length)];
            Assert.Equal(Crc32(typeAndData), BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(at + 8 + length)));
            chunks.Add((Encoding.ASCII.GetString(typeAndData, 0, 4), typeAndData[4..]));
            at += 12 + length;
        }

        return chunks;
    }

    /// <summary>The PNG with chunks inserted after IHDR.</summary>
    private static byte[] Insert(byte[] png, params (string Type, byte[] Data)[] chunks)
    {
        int afterHeader = 8 + 12 + 13;
        var result = new List<byte>(png[..afterHeader]);
        foreach ((string type, byte[] data) in chunks)
        {
            byte[] typeAndData = [.. Encoding.ASCII.GetBytes(type), .. data];
            var word = new byte[4];
            BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
            result.AddRange(word);
            result.AddRange(typeAndData);
            BinaryPrimitives.WriteUInt32BigEndian(word, Crc32(typeAndData));
            result.AddRange(word);
        }

        result.AddRange(png[afterHeader..]);
        return [.. result];
    }

    private static byte[] CorruptText(byte[] png)
    {
        byte[] copy = [.. png];
        int text = Encoding.ASCII.GetString(copy).IndexOf("tEXt", StringComparison.Ordinal);
        copy[text + 10] ^= 0x20;
        return copy;
    }

    private static byte[] Deflate(byte[] data)
    {
        using var output = new MemoryStream();
        using (var zlib = new ZLibStream(output, CompressionLevel.Optimal))
        {
            zlib.Write(data);
        }

        return output.ToArray();
    }

    // The PNG specification's CRC-32 (ISO 3309, reflected 0xEDB88320), bit by bit: independent of the writer's System.IO.Hashing.
    private static uint Crc32(byte[] data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++)
            {
                crc = (crc & 1) != 0 ? 0xEDB88320 ^ (crc >> 1) : crc >> 1;
            }
        }

        return ~crc;
    }

    /// <summary>Records compare their Extra dictionaries by reference; parameters are equal when their text is.</summary>
    private sealed class ParametersComparer : IEqualityComparer<GenerationParameters?>
    {
        public static readonly ParametersComparer Instance = new();

        public bool Equals(GenerationParameters? x, GenerationParameters? y) => x?.ToString() == y?.ToString();

        public int GetHashCode(GenerationParameters? obj) => obj?.ToString().GetHashCode(StringComparison.Ordinal) ?? 0;
    }
}
