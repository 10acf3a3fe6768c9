using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.IO.Compression;
using System.Text;

namespace StableDiffusion.Weights.Torch;

/// <summary>One file in the checkpoint's zip: where its bytes start in the file, and how they are stored.</summary>
internal sealed record ZipEntry(string Name, bool IsCompressed, long CompressedSize, long Size, long DataOffset);

/// <summary>
/// The zip container of <c>torch.save</c> (PyTorch 1.6 and later): <c>&lt;folder&gt;/data.pkl</c>, the storages as
/// <c>&lt;folder&gt;/data/&lt;key&gt;</c>, and small records (<c>byteorder</c>, <c>version</c>, ...).
/// </summary>
/// <remarks>
/// The central directory is read here rather than with <see cref="ZipArchive"/>, which does not say where an entry's bytes
/// start: torch stores storages uncompressed and 64-byte aligned precisely so they can be used in place from the mapped
/// file. Deflated entries (a checkpoint re-zipped by another tool) are inflated with <see cref="DeflateStream"/> when first
/// read. Every size and offset is checked against the file before it is used.
/// </remarks>
internal sealed class CheckpointArchive : IDisposable
{
    private const uint EndOfCentralDirectorySignature = 0x06054b50;
    private const uint Zip64EndOfCentralDirectorySignature = 0x06064b50;
    private const uint Zip64LocatorSignature = 0x07064b50;
    private const uint CentralHeaderSignature = 0x02014b50;
    private const uint LocalHeaderSignature = 0x04034b50;
    private const int EndOfCentralDirectoryLength = 22;
    private const int Zip64LocatorLength = 20;
    private const int Zip64EndOfCentralDirectoryLength = 56;
    private const int CentralHeaderLength = 46;
    private const int LocalHeaderLength = 30;
    private const ushort Zip64ExtraField = 0x0001;
    private const int Stored = 0;
    private const int Deflated = 8;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly MappedFile _file;
    private readonly string _path;
    private readonly Dictionary<string, ZipEntry> _entries;
    private readonly ConcurrentDictionary<ZipEntry, Lazy<byte[]>> _inflated = new();
    private bool _disposed;

    private CheckpointArchive(MappedFile file, string path, Dictionary<string, ZipEntry> entries, string folder)
    {
        _file = file;
        _path = path;
        _entries = entries;
        Folder = folder;
    }

    /// <summary>The folder every record lives in, with its trailing slash (torch names it after the saved file's stem).</summary>
    public string Folder { get; }

    /// <summary>Whether <paramref name="file"/> ends with a zip end-of-central-directory record.</summary>
    public static bool LooksLikeZip(MappedFile file) => FindEndOfCentralDirectory(file) >= 0;

    /// <summary>Reads the central directory of <paramref name="file"/>, which the archive then owns.</summary>
    /// <exception cref="Models.ModelLoadException">The directory is damaged, or names entries a torch.save file cannot have.</exception>
    public static CheckpointArchive Read(MappedFile file, string path)
    {
        long end = FindEndOfCentralDirectory(file);
        if (end < 0)
        {
            throw CheckpointErrors.Damaged(path, "no zip directory at the end of the file");
        }

        (long count, long directoryOffset, long directorySize) = ReadDirectoryLocation(file, path, end);
        if (count > CheckpointLimits.MaxZipEntries)
        {
            throw CheckpointErrors.Damaged(path, $"the zip directory declares {count} entries, more than the {CheckpointLimits.MaxZipEntries} allowed");
        }

        if (directoryOffset < 0 || directorySize < 0 || directoryOffset > end - directorySize)
        {
            throw CheckpointErrors.Damaged(path, $"the zip directory ({directorySize} bytes at {directoryOffset}) lies outside the file");
        }

        var entries = new Dictionary<string, ZipEntry>((int)count, StringComparer.Ordinal);
        string? folder = null;
        long position = directoryOffset;
        long directoryEnd = directoryOffset + directorySize;
        for (long i = 0; i < count; i++)
        {
            ZipEntry entry = ReadCentralHeader(file, path, ref position, directoryEnd);
            folder ??= FolderOf(entry.Name, path);
            if (!entries.TryAdd(entry.Name, entry))
            {
                throw CheckpointErrors.Damaged(path, $"the zip holds two entries named '{entry.Name}'");
            }
        }

        if (folder is null)
        {
            throw CheckpointErrors.Damaged(path, "the zip is empty");
        }

        return new CheckpointArchive(file, path, entries, folder);
    }

    /// <summary>The record <paramref name="name"/> (relative to <see cref="Folder"/>), or null.</summary>
    public ZipEntry? Find(string name) => _entries.GetValueOrDefault(Folder + name);

    /// <summary>Whether the zip has an entry whose name, relative to <see cref="Folder"/>, starts with <paramref name="prefix"/>.</summary>
    public bool HasRecordUnder(string prefix) => _entries.Keys.Any(name => name.StartsWith(Folder + prefix, StringComparison.Ordinal));

    /// <summary><paramref name="length"/> bytes of <paramref name="entry"/>'s content from <paramref name="offset"/>, in place for stored entries.</summary>
    /// <exception cref="ObjectDisposedException">The checkpoint was disposed.</exception>
    public ReadOnlySpan<byte> Read(ZipEntry entry, long offset, int length)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (offset < 0 || length < 0 || offset > entry.Size - length)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"The range {offset} + {length} is outside '{entry.Name}' ({entry.Size} bytes).");
        }

        return entry.IsCompressed
            ? _inflated.GetOrAdd(entry, e => new Lazy<byte[]>(() => Inflate(e))).Value.AsSpan(checked((int)offset), length)
            : _file.Read(entry.DataOffset + offset, length);
    }

    public void Dispose()
    {
        _disposed = true;
        _inflated.Clear();
        _file.Dispose();
    }

    private byte[] Inflate(ZipEntry entry)
    {
        if (entry.Size > Array.MaxLength)
        {
            throw CheckpointErrors.Unsupported(_path, $"the compressed entry '{entry.Name}' holds {entry.Size} bytes, too many to inflate into memory; " +
                "PyTorch itself never compresses entries, so re-save the checkpoint with torch.save");
        }

        byte[] content = GC.AllocateUninitializedArray<byte>((int)entry.Size);
        using Stream compressed = _file.OpenRange(entry.DataOffset, entry.CompressedSize);
        using var inflater = new DeflateStream(compressed, CompressionMode.Decompress);
        try
        {
            int read = inflater.ReadAtLeast(content, content.Length, throwOnEndOfStream: false);
            if (read < content.Length)
            {
                throw CheckpointErrors.Damaged(_path, $"the compressed entry '{entry.Name}' inflates to {read} bytes, not the {entry.Size} its header declares");
            }

            Span<byte> extra = stackalloc byte[1];
            if (inflater.Read(extra) != 0)
            {
                throw CheckpointErrors.Damaged(_path, $"the compressed entry '{entry.Name}' inflates to more than the {entry.Size} bytes its header declares (a zip bomb?)");
            }
        }
        catch (InvalidDataException error)
        {
            throw CheckpointErrors.Damaged(_path, $"the compressed entry '{entry.Name}' is not valid deflate data", error);
        }

        return content;
    }

    /// <summary>The position of the end-of-central-directory record whose comment runs exactly to the end of the file, or -1.</summary>
    private static long FindEndOfCentralDirectory(MappedFile file)
    {
        if (file.Length < EndOfCentralDirectoryLength)
        {
            return -1;
        }

        long earliest = Math.Max(0, file.Length - EndOfCentralDirectoryLength - ushort.MaxValue);
        ReadOnlySpan<byte> tail = file.Read(earliest, (int)(file.Length - earliest));
        for (int at = tail.Length - EndOfCentralDirectoryLength; at >= 0; at--)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(tail[at..]) == EndOfCentralDirectorySignature
                && at + EndOfCentralDirectoryLength + BinaryPrimitives.ReadUInt16LittleEndian(tail[(at + 20)..]) == tail.Length)
            {
                return earliest + at;
            }
        }

        return -1;
    }

    private static (long Count, long Offset, long Size) ReadDirectoryLocation(MappedFile file, string path, long end)
    {
        ReadOnlySpan<byte> record = file.Read(end, EndOfCentralDirectoryLength);
        uint disk = BinaryPrimitives.ReadUInt16LittleEndian(record[4..]);
        uint directoryDisk = BinaryPrimitives.ReadUInt16LittleEndian(record[6..]);
        long entriesOnDisk = BinaryPrimitives.ReadUInt16LittleEndian(record[8..]);
        long count = BinaryPrimitives.ReadUInt16LittleEndian(record[10..]);
        long size = BinaryPrimitives.ReadUInt32LittleEndian(record[12..]);
        long offset = BinaryPrimitives.ReadUInt32LittleEndian(record[16..]);

        // torch writes with miniz's zip64 mode: a zip64 record and its locator precede the classic record, whose
        // fields saturate at 0xFFFF / 0xFFFFFFFF once a checkpoint passes 4 GB or 65,535 entries.
        if (end >= Zip64LocatorLength && BinaryPrimitives.ReadUInt32LittleEndian(file.Read(end - Zip64LocatorLength, 4)) == Zip64LocatorSignature)
        {
            ReadOnlySpan<byte> locator = file.Read(end - Zip64LocatorLength, Zip64LocatorLength);
            long recordOffset = BinaryPrimitives.ReadInt64LittleEndian(locator[8..]);
            if (recordOffset < 0 || recordOffset > end - Zip64LocatorLength - Zip64EndOfCentralDirectoryLength)
            {
                throw CheckpointErrors.Damaged(path, $"the zip64 directory record's offset {recordOffset} lies outside the file");
            }

            ReadOnlySpan<byte> zip64 = file.Read(recordOffset, Zip64EndOfCentralDirectoryLength);
            if (BinaryPrimitives.ReadUInt32LittleEndian(zip64) != Zip64EndOfCentralDirectorySignature)
            {
                throw CheckpointErrors.Damaged(path, "the zip64 directory record is missing where its locator points");
            }

            disk = BinaryPrimitives.ReadUInt32LittleEndian(zip64[16..]);
            directoryDisk = BinaryPrimitives.ReadUInt32LittleEndian(zip64[20..]);
            entriesOnDisk = BinaryPrimitives.ReadInt64LittleEndian(zip64[24..]);
            count = BinaryPrimitives.ReadInt64LittleEndian(zip64[32..]);
            size = BinaryPrimitives.ReadInt64LittleEndian(zip64[40..]);
            offset = BinaryPrimitives.ReadInt64LittleEndian(zip64[48..]);
            end = recordOffset;
        }

        if (disk != 0 || directoryDisk != 0 || entriesOnDisk != count)
        {
            throw CheckpointErrors.Unsupported(path, "the zip is split over several disks, which torch.save never writes");
        }

        if (count < 0 || size < 0 || offset < 0 || offset > end - size)
        {
            throw CheckpointErrors.Damaged(path, $"the zip directory ({count} entries, {size} bytes at {offset}) lies outside the file");
        }

        return (count, offset, size);
    }

    private static ZipEntry ReadCentralHeader(MappedFile file, string path, ref long position, long directoryEnd)
    {
        if (position > directoryEnd - CentralHeaderLength)
        {
            throw CheckpointErrors.Damaged(path, "the zip directory ends in the middle of an entry");
        }

        ReadOnlySpan<byte> header = file.Read(position, CentralHeaderLength);
        if (BinaryPrimitives.ReadUInt32LittleEndian(header) != CentralHeaderSignature)
        {
            throw CheckpointErrors.Damaged(path, $"the zip directory has no entry header at byte {position}");
        }

        ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(header[8..]);
        ushort method = BinaryPrimitives.ReadUInt16LittleEndian(header[10..]);
        long compressedSize = BinaryPrimitives.ReadUInt32LittleEndian(header[20..]);
        long size = BinaryPrimitives.ReadUInt32LittleEndian(header[24..]);
        int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(header[28..]);
        int extraLength = BinaryPrimitives.ReadUInt16LittleEndian(header[30..]);
        int commentLength = BinaryPrimitives.ReadUInt16LittleEndian(header[32..]);
        long localHeader = BinaryPrimitives.ReadUInt32LittleEndian(header[42..]);
        long next = position + CentralHeaderLength + nameLength + extraLength + commentLength;
        if (next > directoryEnd)
        {
            throw CheckpointErrors.Damaged(path, "the zip directory ends in the middle of an entry");
        }

        ReadOnlySpan<byte> nameBytes = file.Read(position + CentralHeaderLength, nameLength);
        string name = EntryName(nameBytes, path);
        ReadZip64Sizes(file.Read(position + CentralHeaderLength + nameLength, extraLength), ref size, ref compressedSize, ref localHeader);
        position = next;

        if ((flags & 1) != 0)
        {
            throw CheckpointErrors.Unsupported(path, $"the zip entry '{name}' is encrypted");
        }

        if (method is not (Stored or Deflated))
        {
            throw CheckpointErrors.Unsupported(path, $"the zip entry '{name}' uses compression method {method}; only stored and deflated entries are read");
        }

        if (size < 0 || compressedSize < 0 || localHeader < 0)
        {
            throw CheckpointErrors.Damaged(path, $"the zip entry '{name}' declares a size or offset past 2^63");
        }

        if (method == Stored && compressedSize != size)
        {
            throw CheckpointErrors.Damaged(path, $"the stored zip entry '{name}' declares {size} bytes but occupies {compressedSize}");
        }

        if (method == Deflated && size / CheckpointLimits.MaxDeflateRatio > compressedSize)
        {
            throw CheckpointErrors.Damaged(path, $"the compressed zip entry '{name}' declares {size} bytes from {compressedSize} compressed bytes, more than deflate can produce (a zip bomb)");
        }

        long dataOffset = ReadLocalHeader(file, path, localHeader, nameBytes, name);
        if (dataOffset > file.Length - compressedSize)
        {
            throw CheckpointErrors.Damaged(path, $"the zip entry '{name}' ({compressedSize} bytes at {dataOffset}) runs past the end of the file ({file.Length} bytes)");
        }

        return new ZipEntry(name, method == Deflated, compressedSize, size, dataOffset);
    }

    /// <summary>Replaces saturated 32-bit fields with their zip64 values, in the order the format lists them.</summary>
    private static void ReadZip64Sizes(ReadOnlySpan<byte> extra, ref long size, ref long compressedSize, ref long localHeader)
    {
        while (extra.Length >= 4)
        {
            ushort id = BinaryPrimitives.ReadUInt16LittleEndian(extra);
            int length = Math.Min(BinaryPrimitives.ReadUInt16LittleEndian(extra[2..]), extra.Length - 4);
            ReadOnlySpan<byte> field = extra.Slice(4, length);
            if (id == Zip64ExtraField)
            {
                size = TakeZip64(ref field, size);
                compressedSize = TakeZip64(ref field, compressedSize);
                localHeader = TakeZip64(ref field, localHeader);
                return;
            }

            extra = extra[(4 + length)..];
        }
    }

    private static long TakeZip64(ref ReadOnlySpan<byte> field, long value)
    {
        if (value != uint.MaxValue || field.Length < 8)
        {
            return value;
        }

        long wide = BinaryPrimitives.ReadInt64LittleEndian(field);
        field = field[8..];
        return wide;
    }

    private static long ReadLocalHeader(MappedFile file, string path, long offset, ReadOnlySpan<byte> nameBytes, string name)
    {
        if (offset > file.Length - LocalHeaderLength)
        {
            throw CheckpointErrors.Damaged(path, $"the zip entry '{name}' has its header at {offset}, past the end of the file");
        }

        ReadOnlySpan<byte> header = file.Read(offset, LocalHeaderLength);
        int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(header[26..]);
        int extraLength = BinaryPrimitives.ReadUInt16LittleEndian(header[28..]);
        long dataOffset = offset + LocalHeaderLength + nameLength + extraLength;
        if (BinaryPrimitives.ReadUInt32LittleEndian(header) != LocalHeaderSignature || dataOffset > file.Length
            || !file.Read(offset + LocalHeaderLength, nameLength).SequenceEqual(nameBytes))
        {
            throw CheckpointErrors.Damaged(path, $"the zip entry '{name}' has no matching local header at byte {offset}");
        }

        return dataOffset;
    }

    /// <summary>The entry's name, refused when it could point outside an extraction folder: torch.save never writes such names.</summary>
    private static string EntryName(ReadOnlySpan<byte> bytes, string path)
    {
        if (bytes.Length is 0 or > CheckpointLimits.MaxEntryNameBytes)
        {
            throw CheckpointErrors.Damaged(path, $"a zip entry has a name of {bytes.Length} bytes");
        }

        string name;
        try
        {
            name = StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw CheckpointErrors.Damaged(path, "a zip entry's name is not valid UTF-8");
        }

        bool escapes = name[0] is '/' or '\\' || name.Contains('\\', StringComparison.Ordinal) || name.Contains(':', StringComparison.Ordinal)
            || name.Contains('\0', StringComparison.Ordinal) || name.Split('/').Contains("..");
        if (escapes)
        {
            throw CheckpointErrors.Damaged(path, $"the zip entry name '{name.Replace("\0", "\\0", StringComparison.Ordinal)}' points outside the archive (path traversal)");
        }

        return name;
    }

    private static string FolderOf(string name, string path)
    {
        int slash = name.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0)
        {
            throw CheckpointErrors.Damaged(path, $"the first zip entry '{name}' is not in a folder, as torch.save's records are");
        }

        return name[..(slash + 1)];
    }
}
