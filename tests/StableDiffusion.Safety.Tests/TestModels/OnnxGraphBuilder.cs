using System.Text;

namespace StableDiffusion.Safety.Tests.TestModels;

/// <summary>
/// Writes small ONNX models (the protobuf wire format of onnx.proto, the handful of fields these tests need) so that
/// tests can run graphs the fixtures do not have: float16 checkers, wrong signatures, a deliberately slow graph.
/// </summary>
internal sealed class OnnxGraphBuilder
{
    public const int Float = 1;
    public const int Int32 = 6;
    public const int Int64 = 7;
    public const int Bool = 9;
    public const int Float16 = 10;

    private readonly List<byte[]> _nodes = [];
    private readonly List<byte[]> _initializers = [];
    private readonly List<byte[]> _inputs = [];
    private readonly List<byte[]> _outputs = [];

    /// <summary>Adds a graph input; a dimension is a number, or a string for a named free dimension.</summary>
    public OnnxGraphBuilder Input(string name, int elementType, params object[] dims)
    {
        _inputs.Add(ValueInfo(name, elementType, dims));
        return this;
    }

    /// <summary>Adds a graph output.</summary>
    public OnnxGraphBuilder Output(string name, int elementType, params object[] dims)
    {
        _outputs.Add(ValueInfo(name, elementType, dims));
        return this;
    }

    /// <summary>Adds a node; attributes are (name, long | float | long[]).</summary>
    public OnnxGraphBuilder Node(string opType, string[] inputs, string[] outputs, params (string Name, object Value)[] attributes)
    {
        var node = new ProtoWriter();
        foreach (string input in inputs)
        {
            node.String(1, input);
        }

        foreach (string output in outputs)
        {
            node.String(2, output);
        }

        node.String(3, $"{opType}_{_nodes.Count}");
        node.String(4, opType);
        foreach ((string name, object value) in attributes)
        {
            var attribute = new ProtoWriter();
            attribute.String(1, name);
            switch (value)
            {
                case float f:
                    attribute.Fixed32(2, BitConverter.SingleToInt32Bits(f));
                    attribute.Varint(20, 1);
                    break;
                case long i:
                    attribute.Varint(3, (ulong)i);
                    attribute.Varint(20, 2);
                    break;
                case long[] ints:
                    foreach (long i in ints)
                    {
                        attribute.Varint(8, (ulong)i);
                    }

                    attribute.Varint(20, 7);
                    break;
                default:
                    throw new ArgumentException($"Unsupported attribute value {value}.", nameof(attributes));
            }

            node.Message(5, attribute);
        }

        _nodes.Add(node.ToArray());
        return this;
    }

    /// <summary>Adds a float32 initializer.</summary>
    public OnnxGraphBuilder FloatInitializer(string name, long[] dims, float[] values)
    {
        var tensor = new ProtoWriter();
        foreach (long d in dims)
        {
            tensor.Varint(1, (ulong)d);
        }

        tensor.Varint(2, Float);
        tensor.String(8, name);
        byte[] raw = new byte[values.Length * 4];
        Buffer.BlockCopy(values, 0, raw, 0, raw.Length);
        tensor.Bytes(9, raw);
        _initializers.Add(tensor.ToArray());
        return this;
    }

    /// <summary>Adds an int64 initializer.</summary>
    public OnnxGraphBuilder Int64Initializer(string name, long[] dims, long[] values)
    {
        var tensor = new ProtoWriter();
        foreach (long d in dims)
        {
            tensor.Varint(1, (ulong)d);
        }

        tensor.Varint(2, Int64);
        tensor.String(8, name);
        byte[] raw = new byte[values.Length * 8];
        Buffer.BlockCopy(values, 0, raw, 0, raw.Length);
        tensor.Bytes(9, raw);
        _initializers.Add(tensor.ToArray());
        return this;
    }

    /// <summary>The serialised model (IR version 8, opset 13).</summary>
    public byte[] Build()
    {
        var graph = new ProtoWriter();
        foreach (byte[] node in _nodes)
        {
            graph.Bytes(1, node);
        }

        graph.String(2, "test_graph");
        foreach (byte[] initializer in _initializers)
        {
            graph.Bytes(5, initializer);
        }

        foreach (byte[] input in _inputs)
        {
            graph.Bytes(11, input);
        }

        foreach (byte[] output in _outputs)
        {
            graph.Bytes(12, output);
        }

        var opset = new ProtoWriter();
        opset.String(1, string.Empty);
        opset.Varint(2, 13);

        var model = new ProtoWriter();
        model.Varint(1, 8);
        model.String(2, "StableDiffusion.Safety.Tests");
        model.Message(8, opset);
        model.Message(7, graph);
        return model.ToArray();
    }

    /// <summary>Writes the model to a new temporary file and returns its path.</summary>
    public string Save()
    {
        string path = Path.Combine(Path.GetTempPath(), $"sd-safety-test-{Guid.NewGuid():N}.onnx");
        File.WriteAllBytes(path, Build());
        return path;
    }

    private static byte[] ValueInfo(string name, int elementType, object[] dims)
    {
        var shape = new ProtoWriter();
        foreach (object dim in dims)
        {
            var dimension = new ProtoWriter();
            if (dim is string symbol)
            {
                dimension.String(2, symbol);
            }
            else
            {
                dimension.Varint(1, (ulong)Convert.ToInt64(dim, System.Globalization.CultureInfo.InvariantCulture));
            }

            shape.Message(1, dimension);
        }

        var tensorType = new ProtoWriter();
        tensorType.Varint(1, (ulong)elementType);
        tensorType.Message(2, shape);
        var type = new ProtoWriter();
        type.Message(1, tensorType);
        var valueInfo = new ProtoWriter();
        valueInfo.String(1, name);
        valueInfo.Message(2, type);
        return valueInfo.ToArray();
    }

    private sealed class ProtoWriter
    {
        private readonly MemoryStream _stream = new();

        public void Varint(int field, ulong value)
        {
            WriteTag(field, 0);
            WriteVarint(value);
        }

        public void Fixed32(int field, int value)
        {
            WriteTag(field, 5);
            _stream.Write(BitConverter.GetBytes(value));
        }

        public void String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

        public void Message(int field, ProtoWriter message) => Bytes(field, message.ToArray());

        public void Bytes(int field, byte[] value)
        {
            WriteTag(field, 2);
            WriteVarint((ulong)value.Length);
            _stream.Write(value);
        }

        public byte[] ToArray() => _stream.ToArray();

        private void WriteTag(int field, int wireType) => WriteVarint((ulong)((field << 3) | wireType));

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
