using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using System.Text;

namespace StableDiffusion.Imaging;

/// <summary>
/// Finds one text chunk of a PNG (tEXt, zTXt or iTXt, as Pillow and the web UIs write them) without decoding the image:
/// the chunks are walked, image data is skipped, and every chunk read is checked against its CRC.
/// </summary>
internal static class PngTextReader
{
    /// <summary>The longest text chunk read, compressed or not; web UI parameters are a few kilobytes.</summary>
    private const int MaxTextLength = 1 << 20;

    /// <summary>The text of the first chunk with <paramref name="keyword"/>, or null when the PNG has none.</summary>
    /// <exception cref="InvalidDataException">The stream is not a PNG, or is truncated or corrupt before such a chunk.</exception>
    public static string? Read(Stream png, string keyword)
    {
        Span<byte> signature = stackalloc byte[8];
        if (png.ReadAtLeast(signature, signature.Length, throwOnEndOfStream: false) != signature.Length || !signature.SequenceEqual(PngEncoder.Signature))
        {
            throw new InvalidDataException("This is not a PNG file: it does not start with the PNG signature.");
        }

        Span<byte> header = stackalloc byte[8];
        Span<byte> crcBytes = stackalloc byte[4];
        while (true)
        {
            if (png.ReadAtLeast(header, header.Length, throwOnEndOfStream: false) != header.Length)
            {
                throw new InvalidDataException("The PNG file is truncated: it ends before its IEND chunk.");
            }

            uint length = BinaryPrimitives.ReadUInt32BigEndian(header);
            string type = Encoding.ASCII.GetString(header[4..]);
            if (type == "IEND")
            {
                return null;
            }

            if (type is not ("tEXt" or "zTXt" or "iTXt") || length > MaxTextLength)
            {
                Skip(png, length + 4L);
                continue;
            }

            var data = new byte[length];
            png.ReadExactly(data);
            png.ReadExactly(crcBytes);
            var crc = new Crc32();
            crc.Append(header[4..]);
            crc.Append(data);
            if (crc.GetCurrentHashAsUInt32() != BinaryPrimitives.ReadUInt32BigEndian(crcBytes))
            {
                throw new InvalidDataException($"The PNG file is corrupt: its {type} chunk fails its CRC check.");
            }

            int nul = Array.IndexOf(data, (byte)0);
            if (nul < 0 || Encoding.Latin1.GetString(data, 0, nul) != keyword)
            {
                continue;
            }

            return Decode(type, data.AsSpan(nul + 1));
        }
    }

    private static string Decode(string type, ReadOnlySpan<byte> body)
    {
        switch (type)
        {
            case "tEXt":
                return Encoding.Latin1.GetString(body);
            case "zTXt":
                return Encoding.Latin1.GetString(Inflate(body[1..]));
            default:
                // iTXt: compression flag, method, language tag NUL, translated keyword NUL, UTF-8 text.
                bool compressed = body[0] != 0;
                ReadOnlySpan<byte> rest = body[2..];
                for (int fields = 0; fields < 2; fields++)
                {
                    int nul = rest.IndexOf((byte)0);
                    if (nul < 0)
                    {
                        throw new InvalidDataException("The PNG file has a malformed iTXt chunk.");
                    }

                    rest = rest[(nul + 1)..];
                }

                return Encoding.UTF8.GetString(compressed ? Inflate(rest) : rest);
        }
    }

    private static byte[] Inflate(ReadOnlySpan<byte> compressed)
    {
        using var input = new MemoryStream(compressed.ToArray());
        using var zlib = new ZLibStream(input, CompressionMode.Decompress);
        using var output = new MemoryStream();
        var buffer = new byte[16 * 1024];
        int n;
        while ((n = zlib.Read(buffer)) > 0)
        {
            output.Write(buffer, 0, n);
            if (output.Length > MaxTextLength)
            {
                throw new InvalidDataException($"The PNG file has a compressed text chunk longer than {MaxTextLength} bytes.");
            }
        }

        return output.ToArray();
    }

    private static void Skip(Stream png, long count)
    {
        if (png.CanSeek)
        {
            if (png.Position + count > png.Length)
            {
                throw new InvalidDataException("The PNG file is truncated: a chunk is longer than what is left of the file.");
            }

            png.Seek(count, SeekOrigin.Current);
            return;
        }

        var buffer = new byte[16 * 1024];
        while (count > 0)
        {
            int n = png.Read(buffer, 0, (int)Math.Min(buffer.Length, count));
            if (n == 0)
            {
                throw new InvalidDataException("The PNG file is truncated: a chunk is longer than what is left of the file.");
            }

            count -= n;
        }
    }
}
