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

    /// <summary>
    /// The model with the named tensors added to the main graph's outputs (ONNX Runtime infers their types). A second
    /// <c>graph</c> field appended to the model is merged into the first by every protobuf parser (a repeated occurrence of a
    /// singular message field merges), so the original bytes stay untouched.
    /// </summary>
    public static byte[] AddGraphOutputs(byte[] model, IEnumerable<string> tensorNames)
    {
        var outputs = new MemoryStream();
        foreach (string name in tensorNames)
        {
            WriteLengthDelimited(outputs, GraphOutput, LengthDelimited(ValueInfoName, Encoding.UTF8.GetBytes(name)));
        }

        var result = new MemoryStream(model.Length + (int)outputs.Length + 16);
        result.Write(model);
        WriteLengthDelimited(result, ModelGraph, outputs.ToArray());
        return result.ToArray();
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
        using var stream = new MemoryStream(model, writable: false);
        var reader = new ProtobufReader(stream);
        reader.ForEachField(model.Length, (field, wireType) =>
        {
            if (field != ModelGraph || wireType != ProtobufReader.LengthDelimited)
            {
                return false;
            }

            reader.ForEachField(reader.ReadMessageEnd(), (graphField, graphWire) =>
            {
                if (graphField != GraphNode || graphWire != ProtobufReader.LengthDelimited)
                {
                    return false;
                }

                nodes.Add(ReadNode(reader, reader.ReadMessageEnd()));
                return true;
            });
            return true;
        });
        return nodes;
    }

    private static Node ReadNode(ProtobufReader reader, long end)
    {
        var inputs = new List<string>();
        var outputs = new List<string>();
        string opType = string.Empty;
        reader.ForEachField(end, (field, wireType) =>
        {
            if (wireType != ProtobufReader.LengthDelimited || field is not (NodeInput or NodeOutput or NodeOpType))
            {
                return false;
            }

            string text = reader.ReadString();
            switch (field)
            {
                case NodeInput:
                    inputs.Add(text);
                    break;
                case NodeOutput:
                    outputs.Add(text);
                    break;
                default:
                    opType = text;
                    break;
            }

            return true;
        });
        return new Node(opType, [.. inputs], [.. outputs]);
    }

    private static byte[] LengthDelimited(int field, byte[] payload)
    {
        var stream = new MemoryStream(payload.Length + 12);
        WriteLengthDelimited(stream, field, payload);
        return stream.ToArray();
    }

    private static void WriteLengthDelimited(Stream stream, int field, byte[] payload)
    {
        WriteVarint(stream, ((ulong)field << 3) | ProtobufReader.LengthDelimited);
        WriteVarint(stream, (ulong)payload.Length);
        stream.Write(payload);
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
}
