using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace StableDiffusion.Core.Tests.Weights;

/// <summary>Writes safetensors files for tests: well-formed ones from tensors, or any header over any data.</summary>
internal static class SafetensorsWriter
{
    /// <summary>A tensor to write.</summary>
    public sealed record Tensor(string Name, string DType, long[] Shape, byte[] Data)
    {
        public static Tensor Float32(string name, long[] shape, float[] values) => new(name, "F32", shape, MemoryMarshal.AsBytes<float>(values).ToArray());

        public static Tensor Float16(string name, long[] shape, float[] values) =>
            new(name, "F16", shape, MemoryMarshal.AsBytes<Half>([.. values.Select(v => (Half)v)]).ToArray());
    }

    /// <summary>Writes the tensors contiguously, in order, with their header (and <paramref name="metadata"/>), to <paramref name="path"/>.</summary>
    public static void Write(string path, IEnumerable<Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = new Dictionary<string, object>();
        if (metadata is not null)
        {
            header["__metadata__"] = metadata;
        }

        long offset = 0;
        var data = new MemoryStream();
        foreach (Tensor tensor in tensors)
        {
            header[tensor.Name] = new { dtype = tensor.DType, shape = tensor.Shape, data_offsets = new[] { offset, offset + tensor.Data.Length } };
            data.Write(tensor.Data);
            offset += tensor.Data.Length;
        }

        WriteRaw(path, JsonSerializer.Serialize(header), data.ToArray());
    }

    /// <summary>Writes <paramref name="headerJson"/> (padded with spaces to 8 bytes, as the format's writers do) over <paramref name="data"/>.</summary>
    public static void WriteRaw(string path, string headerJson, byte[] data, ulong? headerLength = null)
    {
        byte[] header = Encoding.UTF8.GetBytes(headerJson.PadRight((headerJson.Length + 7) / 8 * 8));
        using var file = File.Create(path);
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, headerLength ?? (ulong)header.Length);
        file.Write(prefix);
        file.Write(header);
        file.Write(data);
    }
}
