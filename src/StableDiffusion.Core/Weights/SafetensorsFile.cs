using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;

namespace StableDiffusion.Weights;

/// <summary>
/// A safetensors file (the format of diffusers' <c>diffusion_pytorch_model.safetensors</c> and single-file checkpoints):
/// the header is read and checked when the file is opened, and tensor bytes are read through a memory mapping, so only the
/// tensors used are paged in and nothing is copied.
/// </summary>
/// <remarks>
/// <para>The format: an unsigned little-endian 64-bit header length N, N bytes of UTF-8 JSON mapping each tensor name to
/// <c>{"dtype", "shape", "data_offsets": [begin, end]}</c> (offsets from the end of the header) plus an optional
/// <c>__metadata__</c> map of strings, then the data section.</para>
/// <para>Opening validates everything the header claims against the file's length without reading the data, so a lying or
/// truncated file of any size fails at once with a <see cref="SafetensorsFormatException"/>: the header length, the JSON,
/// each dtype, shape and byte range, duplicate names, overlaps, and bytes that belong to no tensor (the format forbids
/// holes, which is what keeps a file from being something else as well).</para>
/// <para>Written here rather than taken from a package: no .NET package reads safetensors with this validation and
/// without copying the data.</para>
/// </remarks>
internal sealed class SafetensorsFile : IDisposable
{
    /// <summary>The largest header accepted: the limit of the format's reference implementation (100 MB).</summary>
    public const long MaxHeaderLength = 100_000_000;

    private const string MetadataKey = "__metadata__";

    // The dtypes of the format that ONNX has an element type for.
    private static readonly Dictionary<string, TensorElementType> DTypes = new(StringComparer.Ordinal)
    {
        ["BOOL"] = TensorElementType.Bool,
        ["U8"] = TensorElementType.UInt8,
        ["I8"] = TensorElementType.Int8,
        ["F8_E4M3"] = ElementSizes.Float8E4M3,
        ["F8_E5M2"] = ElementSizes.Float8E5M2,
        ["I16"] = TensorElementType.Int16,
        ["U16"] = TensorElementType.UInt16,
        ["F16"] = TensorElementType.Float16,
        ["BF16"] = TensorElementType.BFloat16,
        ["I32"] = TensorElementType.Int32,
        ["U32"] = TensorElementType.UInt32,
        ["F32"] = TensorElementType.Float,
        ["F64"] = TensorElementType.Double,
        ["I64"] = TensorElementType.Int64,
        ["U64"] = TensorElementType.UInt64,
    };
    private const string Advice = "The file is corrupt or truncated; download it again.";

    private readonly MappedFile _file;
    private readonly Dictionary<string, SafetensorsTensor> _byName;

    private SafetensorsFile(string path, MappedFile file, long dataOffset, List<SafetensorsTensor> tensors, Dictionary<string, string> metadata)
    {
        Path = path;
        _file = file;
        DataOffset = dataOffset;
        Tensors = tensors;
        _byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        Metadata = metadata;
    }

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>Where the data section starts (8 + the header length).</summary>
    public long DataOffset { get; }

    /// <summary>The tensors in the order of the header.</summary>
    public IReadOnlyList<SafetensorsTensor> Tensors { get; }

    /// <summary>The header's <c>__metadata__</c> (empty when it has none).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>The tensor named <paramref name="name"/>, or null.</summary>
    public SafetensorsTensor? Find(string name) => _byName.GetValueOrDefault(name);

    /// <summary>Opens <paramref name="path"/> and validates its header.</summary>
    /// <exception cref="SafetensorsFormatException">The file is not a valid safetensors file (the message says why).</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    public static SafetensorsFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
        try
        {
            long fileLength = stream.Length;
            if (fileLength < 8)
            {
                throw Invalid(SafetensorsProblem.Truncated, path, $"the file has {fileLength} bytes, too few for the 8-byte header length");
            }

            Span<byte> prefix = stackalloc byte[8];
            stream.ReadExactly(prefix);
            ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
            if (headerLength > MaxHeaderLength)
            {
                throw Invalid(SafetensorsProblem.HeaderLength, path,
                    $"its header length, {headerLength} bytes, is larger than any safetensors header ({MaxHeaderLength} bytes at most)");
            }

            if ((long)headerLength > fileLength - 8)
            {
                throw Invalid(SafetensorsProblem.HeaderLength, path,
                    $"its header length, {headerLength} bytes, runs past the end of the file ({fileLength} bytes)");
            }

            byte[] header = new byte[headerLength];
            stream.ReadExactly(header);
            long dataOffset = 8 + (long)headerLength;
            (List<SafetensorsTensor> tensors, Dictionary<string, string> metadata) = ParseHeader(path, header, dataOffset, fileLength - dataOffset);
            return new SafetensorsFile(path, MappedFile.Map(stream), dataOffset, tensors, metadata);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The bytes of <paramref name="tensor"/>, from the memory mapping (valid until the file is disposed). Only the pages
    /// read are loaded.
    /// </summary>
    public ReadOnlySpan<byte> GetBytes(SafetensorsTensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (!ReferenceEquals(_byName.GetValueOrDefault(tensor.Name), tensor))
        {
            throw new ArgumentException($"'{tensor.Name}' is not a tensor of '{Path}'.", nameof(tensor));
        }

        if (tensor.Length > int.MaxValue)
        {
            throw new NotSupportedException($"Tensor '{tensor.Name}' of '{Path}' has {tensor.Length} bytes, more than one span can hold.");
        }

        return _file.Read(tensor.Offset, (int)tensor.Length);
    }

    /// <summary>
    /// Writes a safetensors file at <paramref name="path"/> (a new file) holding <paramref name="tensors"/>, in order: each
    /// one's <c>Write</c> fills exactly its bytes (little-endian, row-major), one tensor in memory at a time.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A tensor has an element type the format has no dtype for, or holds 2 GiB or more.</exception>
    /// <exception cref="IOException">The file exists or cannot be written.</exception>
    public static void Write(string path, IReadOnlyList<TensorToWrite> tensors)
    {
        var header = new Dictionary<string, object>(StringComparer.Ordinal);
        long offset = 0;
        foreach (TensorToWrite tensor in tensors)
        {
            string dtype = DTypes.FirstOrDefault(pair => pair.Value == tensor.ElementType).Key
                ?? throw new ArgumentOutOfRangeException(nameof(tensors), tensor.ElementType, $"Tensor '{tensor.Name}' has an element type safetensors has no dtype for.");
            ArgumentOutOfRangeException.ThrowIfGreaterThan(tensor.ByteCount, int.MaxValue, nameof(tensors));
            header[tensor.Name] = new { dtype, shape = tensor.Shape, data_offsets = new[] { offset, offset + tensor.ByteCount } };
            offset += tensor.ByteCount;
        }

        // The header padded with spaces to a multiple of 8 bytes, as the format's own writer does, so the data is aligned.
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(header);
        byte[] headerBytes = [.. json, .. Enumerable.Repeat((byte)' ', (8 - (json.Length % 8)) % 8)];
        using var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)headerBytes.Length);
        stream.Write(length);
        stream.Write(headerBytes);
        foreach (TensorToWrite tensor in tensors)
        {
            byte[] buffer = ArrayPool<byte>.Shared.Rent((int)tensor.ByteCount);
            try
            {
                tensor.Write(buffer.AsSpan(0, (int)tensor.ByteCount));
                stream.Write(buffer, 0, (int)tensor.ByteCount);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    /// <summary>Closes the file and its mapping; spans from <see cref="GetBytes"/> must not be used afterwards.</summary>
    public void Dispose() => _file.Dispose();

    private static (List<SafetensorsTensor> Tensors, Dictionary<string, string> Metadata) ParseHeader(string path, byte[] header, long dataOffset, long dataLength)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header);
        }
        catch (JsonException e)
        {
            throw Invalid(SafetensorsProblem.InvalidHeader, path, $"its header is not valid JSON ({e.Message})", e);
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw Invalid(SafetensorsProblem.InvalidHeader, path, $"its header is a JSON {document.RootElement.ValueKind}, not an object of tensors");
            }

            var tensors = new List<SafetensorsTensor>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (JsonProperty entry in document.RootElement.EnumerateObject())
            {
                if (!names.Add(entry.Name))
                {
                    throw Invalid(SafetensorsProblem.DuplicateName, path, $"its header lists tensor '{entry.Name}' twice");
                }

                if (entry.Name == MetadataKey)
                {
                    ReadMetadata(path, entry.Value, metadata);
                }
                else
                {
                    tensors.Add(ReadTensor(path, entry, dataOffset, dataLength));
                }
            }

            CheckCoverage(path, tensors, dataOffset, dataLength);
            return (tensors, metadata);
        }
    }

    private static void ReadMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw Invalid(SafetensorsProblem.InvalidHeader, path, $"its {MetadataKey} is a JSON {value.ValueKind}, not an object of strings");
        }

        foreach (JsonProperty item in value.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
            {
                throw Invalid(SafetensorsProblem.InvalidHeader, path, $"its {MetadataKey} entry '{item.Name}' is a JSON {item.Value.ValueKind}, not a string");
            }

            metadata[item.Name] = item.Value.GetString()!;
        }
    }

    private static SafetensorsTensor ReadTensor(string path, JsonProperty entry, long dataOffset, long dataLength)
    {
        string name = entry.Name;
        JsonElement value = entry.Value;
        if (value.ValueKind != JsonValueKind.Object
            || !value.TryGetProperty("dtype", out JsonElement dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String
            || !value.TryGetProperty("shape", out JsonElement shapeElement) || shapeElement.ValueKind != JsonValueKind.Array
            || !value.TryGetProperty("data_offsets", out JsonElement offsetsElement) || offsetsElement.ValueKind != JsonValueKind.Array)
        {
            throw Invalid(SafetensorsProblem.InvalidHeader, path,
                $"tensor '{name}' is not an object with a string 'dtype', a 'shape' array and a 'data_offsets' array: {Shorten(value.GetRawText())}");
        }

        string dtypeName = dtypeElement.GetString()!;
        if (!DTypes.TryGetValue(dtypeName, out TensorElementType elementType))
        {
            throw Invalid(SafetensorsProblem.UnknownDType, path, $"tensor '{name}' has dtype '{dtypeName}', which is not one of {string.Join(", ", DTypes.Keys)}");
        }

        long[] shape = ReadNaturals(path, name, "shape", shapeElement);
        long[] offsets = ReadNaturals(path, name, "data_offsets", offsetsElement);
        if (offsets.Length != 2)
        {
            throw Invalid(SafetensorsProblem.InvalidHeader, path, $"tensor '{name}' has {offsets.Length} data_offsets instead of two (begin, end)");
        }

        (long begin, long end) = (offsets[0], offsets[1]);
        if (begin > end || end > dataLength)
        {
            throw Invalid(SafetensorsProblem.OffsetsOutOfRange, path, begin > end
                ? $"tensor '{name}' has data_offsets [{begin}, {end}], which end before they begin"
                : $"tensor '{name}' has data_offsets [{begin}, {end}], past the end of the data ({dataLength} bytes after the header): the file is truncated, or its header is wrong");
        }

        long expected = ByteCount(shape, elementType);
        if (expected != end - begin)
        {
            string size = expected < 0 ? "more bytes than a file can hold" : $"{expected} bytes";
            throw Invalid(SafetensorsProblem.SizeMismatch, path,
                $"tensor '{name}' is {dtypeName}[{string.Join(", ", shape)}], which is {size}, but its data_offsets [{begin}, {end}] hold {end - begin}");
        }

        return new SafetensorsTensor(name, dtypeName, elementType, shape, dataOffset + begin, end - begin);
    }

    private static void CheckCoverage(string path, List<SafetensorsTensor> tensors, long dataOffset, long dataLength)
    {
        long covered = 0;
        SafetensorsTensor? previous = null;
        foreach (SafetensorsTensor tensor in tensors.OrderBy(t => t.Offset).ThenBy(t => t.Length))
        {
            long begin = tensor.Offset - dataOffset;
            if (begin < covered)
            {
                throw Invalid(SafetensorsProblem.OverlappingTensors, path,
                    $"tensors '{previous!.Name}' and '{tensor.Name}' share bytes {begin} to {covered} of the data");
            }

            if (begin > covered)
            {
                throw Invalid(SafetensorsProblem.UnusedBytes, path, $"bytes {covered} to {begin} of the data belong to no tensor");
            }

            covered = begin + tensor.Length;
            previous = tensor;
        }

        if (covered != dataLength)
        {
            throw Invalid(SafetensorsProblem.UnusedBytes, path, $"bytes {covered} to {dataLength} of the data (the end of the file) belong to no tensor");
        }
    }

    private static long[] ReadNaturals(string path, string name, string field, JsonElement array)
    {
        var values = new long[array.GetArrayLength()];
        int i = 0;
        foreach (JsonElement item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out long value) || value < 0)
            {
                throw Invalid(SafetensorsProblem.InvalidHeader, path, $"tensor '{name}' has {field} {Shorten(array.GetRawText())}, which are not all non-negative integers");
            }

            values[i++] = value;
        }

        return values;
    }

    // -1 when the product overflows.
    private static long ByteCount(long[] shape, TensorElementType elementType)
    {
        try
        {
            return checked(shape.Aggregate(1L, (count, dimension) => count * dimension) * ElementSizes.Of(elementType));
        }
        catch (OverflowException)
        {
            return -1;
        }
    }

    private static string Shorten(string json) => json.Length <= 120 ? json : string.Concat(json.AsSpan(0, 117), "...");

    private static SafetensorsFormatException Invalid(SafetensorsProblem problem, string path, string what, Exception? inner = null) =>
        new(problem, string.Create(CultureInfo.InvariantCulture, $"'{path}' is not a valid safetensors file: {what}. {Advice}"), path, inner);
}
