using System.Text;

namespace StableDiffusion.Models;

/// <summary>
/// The little ONNX graph editing the SDK needs, on the protobuf wire format (no protobuf dependency): find the latent
/// distribution inside diffusers' exported VAE encoder, and expose intermediate tensors as extra graph outputs.
/// </summary>
/// <remarks>
/// diffusers' ONNX export of the VAE encoder samples its latents inside the graph with an unseeded <c>RandomNormalLike</c>
/// (<c>latent_sample = mean + std * randn</c>), so no seed could reproduce an image-to-image result. Exposing <c>mean</c>
/// and <c>std</c> lets the pipeline draw the noise from its own seeded generator, exactly as diffusers' PyTorch pipelines do.
/// </remarks>
internal static class OnnxGraphSurgery
{
    // Field numbers from onnx.proto3.
    private const int ModelGraph = 7;
    private const int GraphNode = 1;
    private const int GraphOutput = 12;
    private const int NodeInput = 1;
    private const int NodeOutput = 2;
    private const int NodeOpType = 4;
    private const int ValueInfoName = 1;

    private sealed record Node(string OpType, string[] Inputs, string[] Outputs);

    /// <summary>
    /// In a graph whose output is <c>mean + std * noise</c> with the noise from a RandomNormal(Like) node (possibly through
    /// a Cast), the names of the mean and std tensors; null when the graph does not have that shape.
    /// </summary>
    public static (string Mean, string Std)? FindSampledLatentDistribution(byte[] model, string outputName)
    {
        List<Node> nodes = ReadNodes(model);
        var producers = new Dictionary<string, Node>(StringComparer.Ordinal);
        foreach (Node node in nodes)
        {
            foreach (string output in node.Outputs)
            {
                producers[output] = node;
            }
        }

        if (!producers.TryGetValue(outputName, out Node? add) || add.OpType != "Add" || add.Inputs.Length != 2)
        {
            return null;
        }

        for (int a = 0; a < 2; a++)
        {
            if (!producers.TryGetValue(add.Inputs[a], out Node? mul) || mul.OpType != "Mul" || mul.Inputs.Length != 2)
            {
                continue;
            }

            for (int m = 0; m < 2; m++)
            {
                if (IsRandomNormal(mul.Inputs[m], producers))
                {
                    return (add.Inputs[1 - a], mul.Inputs[1 - m]);
                }
            }
        }

        return null;
    }

    /// <summary>The model with the named tensors added to the main graph's outputs (their types are inferred by ONNX Runtime).</summary>
    public static byte[] AddGraphOutputs(byte[] model, IEnumerable<string> tensorNames)
    {
        var extra = new MemoryStream();
        foreach (string name in tensorNames)
        {
            byte[] valueInfo = LengthDelimited(ValueInfoName, Encoding.UTF8.GetBytes(name));
            extra.Write(LengthDelimited(GraphOutput, valueInfo));
        }

        var result = new MemoryStream(model.Length + (int)extra.Length + 16);
        bool found = false;
        var reader = new WireReader(model);
        while (reader.Position < model.Length)
        {
            int start = reader.Position;
            (int field, int wireType) = reader.ReadTag();
            if (field == ModelGraph && wireType == 2 && !found)
            {
                (int graphStart, int graphLength) = reader.ReadLengthDelimited();
                var graph = new byte[graphLength + extra.Length];
                model.AsSpan(graphStart, graphLength).CopyTo(graph);
                extra.ToArray().CopyTo(graph, graphLength);
                result.Write(LengthDelimited(ModelGraph, graph));
                found = true;
                continue;
            }

            reader.Skip(wireType);
            result.Write(model, start, reader.Position - start);
        }

        return found ? result.ToArray() : throw new InvalidDataException("The ONNX model has no graph.");
    }

    private static bool IsRandomNormal(string tensor, Dictionary<string, Node> producers)
    {
        // Follow at most a few value-preserving nodes (Cast, Identity) back to the draw.
        for (int hops = 0; hops < 4 && producers.TryGetValue(tensor, out Node? node); hops++)
        {
            if (node.OpType is "RandomNormalLike" or "RandomNormal")
            {
                return true;
            }

            if (node.OpType is not ("Cast" or "Identity") || node.Inputs.Length == 0)
            {
                return false;
            }

            tensor = node.Inputs[0];
        }

        return false;
    }

    private static List<Node> ReadNodes(byte[] model)
    {
        var nodes = new List<Node>();
        var reader = new WireReader(model);
        while (reader.Position < model.Length)
        {
            (int field, int wireType) = reader.ReadTag();
            if (field != ModelGraph || wireType != 2)
            {
                reader.Skip(wireType);
                continue;
            }

            (int graphStart, int graphLength) = reader.ReadLengthDelimited();
            var graph = new WireReader(model, graphStart, graphStart + graphLength);
            while (graph.Position < graphStart + graphLength)
            {
                (int graphField, int graphWire) = graph.ReadTag();
                if (graphField != GraphNode || graphWire != 2)
                {
                    graph.Skip(graphWire);
                    continue;
                }

                (int nodeStart, int nodeLength) = graph.ReadLengthDelimited();
                nodes.Add(ReadNode(model, nodeStart, nodeLength));
            }
        }

        return nodes;
    }

    private static Node ReadNode(byte[] model, int start, int length)
    {
        var inputs = new List<string>();
        var outputs = new List<string>();
        string opType = string.Empty;
        var reader = new WireReader(model, start, start + length);
        while (reader.Position < start + length)
        {
            (int field, int wireType) = reader.ReadTag();
            if (wireType == 2 && field is NodeInput or NodeOutput or NodeOpType)
            {
                (int s, int l) = reader.ReadLengthDelimited();
                string text = Encoding.UTF8.GetString(model, s, l);
                (field == NodeInput ? inputs : field == NodeOutput ? outputs : null)?.Add(text);
                if (field == NodeOpType)
                {
                    opType = text;
                }
            }
            else
            {
                reader.Skip(wireType);
            }
        }

        return new Node(opType, [.. inputs], [.. outputs]);
    }

    private static byte[] LengthDelimited(int field, byte[] payload)
    {
        var stream = new MemoryStream(payload.Length + 12);
        WriteVarint(stream, ((ulong)field << 3) | 2);
        WriteVarint(stream, (ulong)payload.Length);
        stream.Write(payload);
        return stream.ToArray();
    }

    private static void WriteVarint(Stream stream, ulong value)
    {
        while (value >= 0x80)
        {
            stream.WriteByte((byte)(value | 0x80));
            value >>= 7;
        }

        stream.WriteByte((byte)value);
    }

    private sealed class WireReader(byte[] data, int position, int end)
    {
        public WireReader(byte[] data)
            : this(data, 0, data.Length)
        {
        }

        public int Position { get; private set; } = position;

        public (int Field, int WireType) ReadTag()
        {
            ulong tag = ReadVarint();
            return ((int)(tag >> 3), (int)(tag & 7));
        }

        public (int Start, int Length) ReadLengthDelimited()
        {
            int length = checked((int)ReadVarint());
            int start = Position;
            Advance(length);
            return (start, length);
        }

        public void Skip(int wireType)
        {
            switch (wireType)
            {
                case 0:
                    ReadVarint();
                    break;
                case 1:
                    Advance(8);
                    break;
                case 2:
                    ReadLengthDelimited();
                    break;
                case 5:
                    Advance(4);
                    break;
                default:
                    throw new InvalidDataException($"Unsupported protobuf wire type {wireType} at byte {Position}.");
            }
        }

        private ulong ReadVarint()
        {
            ulong result = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                if (Position >= end)
                {
                    throw new InvalidDataException("The ONNX protobuf ends inside a number.");
                }

                byte b = data[Position++];
                result |= (ulong)(b & 0x7f) << shift;
                if (b < 0x80)
                {
                    return result;
                }
            }

            throw new InvalidDataException("An ONNX protobuf number is too long.");
        }

        private void Advance(int count)
        {
            if (count < 0 || Position + count > end)
            {
                throw new InvalidDataException("The ONNX protobuf is truncated.");
            }

            Position += count;
        }
    }
}
