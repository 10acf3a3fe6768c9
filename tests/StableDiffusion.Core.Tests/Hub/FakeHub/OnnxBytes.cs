using System.Text;

namespace StableDiffusion.Core.Tests.Hub.FakeHub;

/// <summary>Builds small ONNX <c>ModelProto</c> byte blobs (protobuf wire format) with embedded and external tensors.</summary>
public static class OnnxBytes
{
    /// <summary>A model whose graph has one tensor per location (external data) plus an embedded tensor and a node.</summary>
    public static byte[] ModelWithExternalData(params string[] locations) =>
        Model(Graph([.. locations.Select((l, i) => ExternalTensor($"w{i}", l)), EmbeddedTensor("bias", 4096)], [Node("MatMul")]));

    /// <summary>A model with every weight embedded (like the text encoder).</summary>
    public static byte[] ModelWithEmbeddedWeights() => Model(Graph([EmbeddedTensor("weight", 70_000), EmbeddedTensor("bias", 300)], [Node("Add")]));

    public static byte[] Model(byte[] graph)
    {
        var model = new Writer();
        model.Varint(1, 8); // ir_version
        model.String(2, "fake-exporter"); // producer_name
        model.Message(8, new Writer().String(1, "").Varint(2, 17).ToArray()); // opset_import
        model.Message(7, graph);
        model.String(14, "metadata after the graph"); // a later field must be skipped too
        return model.ToArray();
    }

    public static byte[] Graph(byte[][] initializers, byte[][] nodes)
    {
        var graph = new Writer();
        foreach (byte[] node in nodes)
        {
            graph.Message(1, node);
        }

        graph.String(2, "main_graph");
        foreach (byte[] tensor in initializers)
        {
            graph.Message(5, tensor);
        }

        return graph.ToArray();
    }

    public static byte[] Node(string opType, byte[]? subgraph = null, byte[]? tensorAttribute = null)
    {
        var node = new Writer().String(1, "x").String(2, "y").String(4, opType);
        if (subgraph is not null)
        {
            node.Message(5, new Writer().String(1, "then_branch").Message(6, subgraph).Varint(20, 5).ToArray());
        }

        if (tensorAttribute is not null)
        {
            node.Message(5, new Writer().String(1, "value").Message(5, tensorAttribute).Varint(20, 4).ToArray());
        }

        return node.ToArray();
    }

    public static byte[] ExternalTensor(string name, string location) =>
        new Writer()
            .Varint(1, 64).Varint(1, 64) // dims
            .Varint(2, 1) // data_type FLOAT
            .String(8, name)
            .Message(13, new Writer().String(1, "location").String(2, location).ToArray())
            .Message(13, new Writer().String(1, "offset").String(2, "0").ToArray())
            .Message(13, new Writer().String(1, "length").String(2, "16384").ToArray())
            .Varint(14, 1) // data_location EXTERNAL
            .ToArray();

    public static byte[] EmbeddedTensor(string name, int rawBytes) =>
        new Writer().Varint(1, (ulong)(rawBytes / 4)).Varint(2, 1).String(8, name).Bytes(9, new byte[rawBytes]).Fixed32(5, 0).ToArray();

    /// <summary>A tensor naming a location but stored inline (data_location DEFAULT): its location must be ignored.</summary>
    public static byte[] InlineTensorWithStaleLocation(string name, string location) =>
        new Writer().String(8, name).Message(13, new Writer().String(1, "location").String(2, location).ToArray()).Varint(14, 0).ToArray();

    /// <summary>Protobuf wire-format writer.</summary>
    public sealed class Writer
    {
        private readonly MemoryStream _stream = new();

        public Writer Varint(int field, ulong value)
        {
            Tag(field, 0);
            WriteVarint(value);
            return this;
        }

        public Writer Fixed32(int field, uint value)
        {
            Tag(field, 5);
            _stream.Write(BitConverter.GetBytes(value));
            return this;
        }

        public Writer String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

        public Writer Message(int field, byte[] message) => Bytes(field, message);

        public Writer Bytes(int field, byte[] value)
        {
            Tag(field, 2);
            WriteVarint((ulong)value.Length);
            _stream.Write(value);
            return this;
        }

        public byte[] ToArray() => _stream.ToArray();

        private void Tag(int field, int wireType) => WriteVarint(((ulong)field << 3) | (uint)wireType);

        private void WriteVarint(ulong value)
        {
            while (value >= 0x80)
            {
                _stream.WriteByte((byte)(value | 0x80));
                value >>= 7;
            }

            _stream.WriteByte((byte)value);
        }
    }
}
