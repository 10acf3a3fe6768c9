using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using System.Text;
using StableDiffusion.Pipelines;

namespace StableDiffusion.Imaging;

/// <summary>
/// Writes 8-bit RGB PNGs with a <c>parameters</c> text chunk. Written here rather than taken from an image library so
/// that the core package depends on none: a PNG of this one kind is a few chunks around a zlib stream
/// (<see cref="ZLibStream"/>), with CRC-32s from System.IO.Hashing.
/// </summary>
internal static class PngEncoder
{
    public static ReadOnlySpan<byte> Signature => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>The largest IDAT chunk written; the image data is split over as many as it needs.</summary>
    private const int IdatLength = 1 << 16;

    public static void Write(Stream output, RgbImage image, GenerationParameters? parameters)
    {
        output.Write(Signature);
        Span<byte> header = stackalloc byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, image.Width);
        BinaryPrimitives.WriteInt32BigEndian(header[4..], image.Height);
        header[8] = 8;  // bits per channel
        header[9] = 2;  // colour type: RGB
        header[10] = 0; // deflate
        header[11] = 0; // adaptive filtering
        header[12] = 0; // no interlace
        WriteChunk(output, "IHDR"u8, header);
        if (parameters is not null)
        {
            WriteText(output, GenerationParameters.PngKeyword, parameters.ToString());
        }

        using (var idat = new IdatStream(output))
        {
            using var zlib = new ZLibStream(idat, CompressionLevel.Optimal, leaveOpen: true);
            WriteScanlines(zlib, image);
        }

        WriteChunk(output, "IEND"u8, []);
    }

    /// <summary>
    /// A text chunk as Pillow writes them (and web UIs through it): tEXt when the text is Latin-1, else an uncompressed
    /// iTXt in UTF-8, so prompts in any script survive.
    /// </summary>
    private static void WriteText(Stream output, string keyword, string text)
    {
        byte[] key = Encoding.Latin1.GetBytes(keyword);
        if (IsLatin1(text))
        {
            byte[] data = [.. key, 0, .. Encoding.Latin1.GetBytes(text)];
            WriteChunk(output, "tEXt"u8, data);
        }
        else
        {
            // keyword, NUL, compression flag 0, method 0, empty language tag, NUL, empty translated keyword, NUL, UTF-8 text.
            byte[] data = [.. key, 0, 0, 0, 0, 0, .. Encoding.UTF8.GetBytes(text)];
            WriteChunk(output, "iTXt"u8, data);
        }
    }

    private static bool IsLatin1(string text)
    {
        foreach (char c in text)
        {
            if (c > 0xFF || c == '\0')
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Each scanline with the filter that gives the smallest sum of absolute differences (libpng's heuristic), which
    /// compresses generated images far better than no filtering.
    /// </summary>
    private static void WriteScanlines(Stream zlib, RgbImage image)
    {
        int stride = image.Width * RgbImage.BytesPerPixel;
        ReadOnlySpan<byte> pixels = image.Pixels.Span;
        var candidates = new byte[5][];
        for (int f = 0; f < candidates.Length; f++)
        {
            candidates[f] = new byte[stride + 1];
            candidates[f][0] = (byte)f;
        }

        ReadOnlySpan<byte> previous = new byte[stride];
        for (int y = 0; y < image.Height; y++)
        {
            ReadOnlySpan<byte> row = pixels.Slice(y * stride, stride);
            int best = 0;
            long bestScore = long.MaxValue;
            for (int f = 0; f < candidates.Length; f++)
            {
                Span<byte> filtered = candidates[f].AsSpan(1);
                Filter(f, row, previous, filtered);
                long score = 0;
                foreach (byte b in filtered)
                {
                    score += b < 128 ? b : 256 - b;
                }

                if (score < bestScore)
                {
                    (best, bestScore) = (f, score);
                }
            }

            zlib.Write(candidates[best]);
            previous = row;
        }
    }

    private static void Filter(int type, ReadOnlySpan<byte> row, ReadOnlySpan<byte> previous, Span<byte> filtered)
    {
        const int Bpp = RgbImage.BytesPerPixel;
        for (int i = 0; i < row.Length; i++)
        {
            int left = i >= Bpp ? row[i - Bpp] : 0;
            int up = previous[i];
            int upLeft = i >= Bpp ? previous[i - Bpp] : 0;
            int predictor = type switch
            {
                0 => 0,
                1 => left,
                2 => up,
                3 => (left + up) >> 1,
                _ => Paeth(left, up, upLeft),
            };
            filtered[i] = (byte)(row[i] - predictor);
        }
    }

    private static int Paeth(int a, int b, int c)
    {
        int p = a + b - c;
        int pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }

    private static void WriteChunk(Stream output, ReadOnlySpan<byte> type, ReadOnlySpan<byte> data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        output.Write(word);
        output.Write(type);
        output.Write(data);
        var crc = new Crc32();
        crc.Append(type);
        crc.Append(data);
        BinaryPrimitives.WriteUInt32BigEndian(word, crc.GetCurrentHashAsUInt32());
        output.Write(word);
    }

    /// <summary>Cuts the zlib stream into IDAT chunks as it is written, so no copy of the whole compressed image is kept.</summary>
    private sealed class IdatStream(Stream output) : Stream
    {
        private readonly byte[] _buffer = new byte[IdatLength];
        private int _count;

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            while (!buffer.IsEmpty)
            {
                int n = Math.Min(buffer.Length, _buffer.Length - _count);
                buffer[..n].CopyTo(_buffer.AsSpan(_count));
                _count += n;
                buffer = buffer[n..];
                if (_count == _buffer.Length)
                {
                    Flush();
                }
            }
        }

        public override void Flush()
        {
            if (_count > 0)
            {
                WriteChunk(output, "IDAT"u8, _buffer.AsSpan(0, _count));
                _count = 0;
            }
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                Flush();
            }

            base.Dispose(disposing);
        }
    }
}
