using System.Text;

namespace StableDiffusion.Models;

/// <summary>
/// Protobuf wire-format primitives over a seekable stream, bounded by the enclosing message's end: enough to read ONNX
/// graphs without a protobuf dependency (external-data locations, node wiring), skipping tensor payloads with a seek.
/// </summary>
internal sealed class ProtobufReader(Stream stream)
{
    /// <summary>The varint wire type.</summary>
    public const int Varint = 0;

    /// <summary>The length-delimited wire type (strings, bytes, embedded messages).</summary>
    public const int LengthDelimited = 2;

    private const int Fixed64 = 1;
    private const int Fixed32 = 5;
    private const int MaxStringBytes = 64 * 1024;

    /// <summary>
    /// Visits each field until <paramref name="end"/>; <paramref name="visit"/> consumes the field's value and returns
    /// <see langword="true"/>, or returns <see langword="false"/> to have it skipped.
    /// </summary>
    public void ForEachField(long end, Func<int, int, bool> visit)
    {
        while (stream.Position < end)
        {
            ulong tag = ReadVarint();
            int field = checked((int)(tag >> 3));
            int wireType = (int)(tag & 7);
            if (field == 0)
            {
                throw Malformed("field number 0");
            }

            if (!visit(field, wireType))
            {
                Skip(wireType, end);
            }

            if (stream.Position > end)
            {
                throw Malformed("a field runs past the end of its message");
            }
        }
    }

    /// <summary>Reads a length prefix and returns where that embedded message ends.</summary>
    public long ReadMessageEnd()
    {
        ulong length = ReadVarint();
        long end = stream.Position + (long)Math.Min(length, long.MaxValue / 2);
        if (end > stream.Length)
        {
            throw Malformed("a message runs past the end of the file");
        }

        return end;
    }

    public string ReadString()
    {
        long end = ReadMessageEnd();
        long length = end - stream.Position;
        if (length > MaxStringBytes)
        {
            throw Malformed($"a string of {length} bytes");
        }

        byte[] bytes = new byte[length];
        stream.ReadExactly(bytes);
        return Encoding.UTF8.GetString(bytes);
    }

    public ulong ReadVarint()
    {
        ulong result = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            int b = stream.ReadByte();
            if (b < 0)
            {
                throw Malformed("the file ends inside a number");
            }

            result |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return result;
            }
        }

        throw Malformed("a number longer than 10 bytes");
    }

    private void Skip(int wireType, long end)
    {
        long next = wireType switch
        {
            Varint => -1,
            Fixed64 => stream.Position + 8,
            LengthDelimited => ReadMessageEnd(),
            Fixed32 => stream.Position + 4,
            _ => throw Malformed($"unsupported wire type {wireType}"),
        };

        if (wireType == Varint)
        {
            ReadVarint();
            return;
        }

        if (next > end)
        {
            throw Malformed("a field runs past the end of its message");
        }

        stream.Position = next;
    }

    private static InvalidDataException Malformed(string what) =>
        new($"The file is not a valid ONNX model: {what}.");
}
