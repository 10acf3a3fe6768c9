using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;

namespace StableDiffusion.Testing;

/// <summary>One array of a NumPy <c>.npy</c> file (little-endian, C order), as stored in <c>reference.npz</c>.</summary>
public sealed partial class NpyArray
{
    private readonly byte[] _data;

    private NpyArray(string dtype, int[] shape, byte[] data)
    {
        DType = dtype;
        Shape = shape;
        _data = data;
    }

    /// <summary>The NumPy type string, such as <c>&lt;f4</c>, <c>&lt;f8</c> or <c>|u1</c>.</summary>
    public string DType { get; }

    /// <summary>The array's shape.</summary>
    public IReadOnlyList<int> Shape { get; }

    /// <summary>The number of elements.</summary>
    public int Length => Shape.Aggregate(1, (a, b) => a * b);

    /// <summary>The elements as single precision (float32, float64 and uint8 arrays convert).</summary>
    public float[] ToSingle() => DType switch
    {
        "<f4" => Enumerable.Range(0, Length).Select(i => BinaryPrimitives.ReadSingleLittleEndian(_data.AsSpan(i * 4))).ToArray(),
        "<f8" => ToDouble().Select(d => (float)d).ToArray(),
        "|u1" => _data.Select(b => (float)b).ToArray(),
        _ => throw new NotSupportedException($"dtype {DType}"),
    };

    /// <summary>The elements as double precision.</summary>
    public double[] ToDouble() => DType switch
    {
        "<f8" => Enumerable.Range(0, Length).Select(i => BinaryPrimitives.ReadDoubleLittleEndian(_data.AsSpan(i * 8))).ToArray(),
        _ => ToSingle().Select(f => (double)f).ToArray(),
    };

    /// <summary>The raw bytes of a uint8 array.</summary>
    public byte[] ToBytes() => DType == "|u1" ? (byte[])_data.Clone() : throw new NotSupportedException($"dtype {DType} is not uint8");

    /// <summary>Reads one <c>.npy</c> stream.</summary>
    /// <param name="stream">The stream, positioned at the magic string.</param>
    public static NpyArray Read(Stream stream)
    {
        using var ms = new MemoryStream();
        stream.CopyTo(ms);
        byte[] bytes = ms.ToArray();
        if (bytes.Length < 10 || bytes[0] != 0x93 || Encoding.ASCII.GetString(bytes, 1, 5) != "NUMPY")
        {
            throw new InvalidDataException("Not a .npy stream.");
        }

        int major = bytes[6];
        int headerLength = major == 1 ? BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8)) : (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8));
        int headerStart = major == 1 ? 10 : 12;
        string header = Encoding.Latin1.GetString(bytes, headerStart, headerLength);
        string dtype = DescrPattern().Match(header).Groups[1].Value;
        if (header.Contains("'fortran_order': True", StringComparison.Ordinal))
        {
            throw new NotSupportedException("Fortran-order arrays are not used by the reference.");
        }

        string shapeText = ShapePattern().Match(header).Groups[1].Value;
        int[] shape = shapeText.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(int.Parse).ToArray();
        return new NpyArray(dtype, shape, bytes[(headerStart + headerLength)..]);
    }

    /// <summary>Reads every array of an <c>.npz</c> file, keyed by name without the <c>.npy</c> suffix.</summary>
    /// <param name="path">The path of the .npz file.</param>
    public static IReadOnlyDictionary<string, NpyArray> ReadNpz(string path)
    {
        using ZipArchive zip = ZipFile.OpenRead(path);
        var arrays = new Dictionary<string, NpyArray>(StringComparer.Ordinal);
        foreach (ZipArchiveEntry entry in zip.Entries)
        {
            using Stream s = entry.Open();
            string name = entry.FullName.EndsWith(".npy", StringComparison.Ordinal) ? entry.FullName[..^4] : entry.FullName;
            arrays[name] = Read(s);
        }

        return arrays;
    }

    [GeneratedRegex(@"'descr':\s*'([^']+)'")]
    private static partial Regex DescrPattern();

    [GeneratedRegex(@"'shape':\s*\(([^)]*)\)")]
    private static partial Regex ShapePattern();
}
