using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace StableDiffusion.Core.Tests.Weights.Support;

/// <summary>One file of a checkpoint zip, with the ways a test may make it lie.</summary>
/// <param name="Name">The full entry name (<c>archive/data/0</c>).</param>
/// <param name="Data">The content.</param>
/// <param name="Compress">Deflate it (PyTorch never does; other zip tools may).</param>
/// <param name="DeclaredSize">The uncompressed size the headers claim, when not the real one.</param>
internal sealed record ZipRecord(string Name, byte[] Data, bool Compress = false, long? DeclaredSize = null);

/// <summary>
/// Writes a zip the way PyTorch's stream writer (miniz in zip64 mode) does: each entry's data 64-byte aligned by an
/// <c>FB</c> extra field of <c>Z</c> padding in its local header, a central directory, then a zip64 end-of-directory
/// record, its locator and the classic end record.
/// </summary>
internal static class TorchZipWriter
{
    private const int Alignment = 64;
    private const ushort DosDate = (0 << 9) | (1 << 5) | 1; // 1980-01-01, as a fixed timestamp

    public static void Write(string path, IEnumerable<ZipRecord> records) => File.WriteAllBytes(path, ToBytes(records));

    public static byte[] ToBytes(IEnumerable<ZipRecord> records)
    {
        var output = new MemoryStream();
        var directory = new MemoryStream();
        int count = 0;
        foreach (ZipRecord record in records)
        {
            byte[] name = Encoding.UTF8.GetBytes(record.Name);
            byte[] data = record.Compress ? Deflate(record.Data) : record.Data;
            long size = record.DeclaredSize ?? record.Data.Length;
            uint crc = Crc32(record.Data);
            ushort method = record.Compress ? (ushort)8 : (ushort)0;
            long headerOffset = output.Position;

            long unpadded = headerOffset + 30 + name.Length + 4;
            int padding = (int)((Alignment - (unpadded % Alignment)) % Alignment);
            byte[] extra = new byte[4 + padding];
            extra[0] = (byte)'F';
            extra[1] = (byte)'B';
            BinaryPrimitives.WriteUInt16LittleEndian(extra.AsSpan(2), (ushort)padding);
            extra.AsSpan(4).Fill((byte)'Z');

            // The local and central headers share the fields from "version needed" to the name's length.
            void WriteSharedFields(BinaryWriter writer)
            {
                writer.Write(record.Compress ? (ushort)20 : (ushort)0);
                writer.Write((ushort)0);
                writer.Write(method);
                writer.Write((ushort)0);
                writer.Write(DosDate);
                writer.Write(crc);
                writer.Write((uint)data.Length);
                writer.Write((uint)size);
                writer.Write((ushort)name.Length);
            }

            var local = new BinaryWriter(output);
            local.Write(0x04034b50u);
            WriteSharedFields(local);
            local.Write((ushort)extra.Length);
            local.Write(name);
            local.Write(extra);
            local.Write(data);

            var central = new BinaryWriter(directory);
            central.Write(0x02014b50u);
            central.Write((ushort)0x031E);
            WriteSharedFields(central);
            central.Write((ushort)0);
            central.Write((ushort)0);
            central.Write((ushort)0);
            central.Write((ushort)0);
            central.Write(0u);
            central.Write((uint)headerOffset);
            central.Write(name);
            count++;
        }

        long directoryOffset = output.Position;
        directory.Position = 0;
        directory.CopyTo(output);
        long zip64Offset = output.Position;

        var end = new BinaryWriter(output);
        end.Write(0x06064b50u);
        end.Write(44UL);
        end.Write((ushort)0x031E);
        end.Write((ushort)0x002D);
        end.Write(0u);
        end.Write(0u);
        end.Write((ulong)count);
        end.Write((ulong)count);
        end.Write((ulong)directory.Length);
        end.Write((ulong)directoryOffset);

        end.Write(0x07064b50u);
        end.Write(0u);
        end.Write((ulong)zip64Offset);
        end.Write(1u);

        end.Write(0x06054b50u);
        end.Write((ushort)0);
        end.Write((ushort)0);
        end.Write((ushort)count);
        end.Write((ushort)count);
        end.Write((uint)directory.Length);
        end.Write((uint)directoryOffset);
        end.Write((ushort)0);
        return output.ToArray();
    }

    public static byte[] Deflate(byte[] data)
    {
        var compressed = new MemoryStream();
        using (var deflater = new DeflateStream(compressed, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            deflater.Write(data);
        }

        return compressed.ToArray();
    }

    private static uint Crc32(byte[] data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int bit = 0; bit < 8; bit++)
            {
                crc = (crc >> 1) ^ (0xEDB88320u & (uint)-(int)(crc & 1));
            }
        }

        return ~crc;
    }
}
