using System.Text;

namespace StableDiffusion.Models;

/// <summary>
/// The little ONNX graph editing the SDK needs, on the protobuf wire format (no protobuf dependency): find the latent
/// distribution inside diffusers' exported VAE encoder, expose intermediate tensors as extra graph outputs, and let a UNet
/// exported with an integer timestep take the fractional timesteps diffusers' PyTorch UNet sees.
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
    private const int GraphInput = 11;
    private const int GraphOutput = 12;
    private const int NodeInput = 1;
    private const int NodeOutput = 2;
    private const int NodeOpType = 4;
    private const int NodeAttribute = 5;
    private const int AttributeName = 1;
    private const int AttributeInt = 3;
    private const int ValueInfoName = 1;
    private const int ValueInfoType = 2;
    private const int TypeTensor = 1;
    private const int TensorElementType = 1;

    // TensorProto.DataType values.
    private const int Float = 1;
    private const int Int32 = 6;
    private const int Int64 = 7;
    private const int Float16 = 10;
    private const int Double = 11;
    private const int BFloat16 = 16;

    private sealed record Node(string OpType, string[] Inputs, string[] Outputs, long? CastTo = null);

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

    /// <summary>
    /// The model with its integer <paramref name="inputName"/> input (int64 or int32, as early UNet exports have the
    /// timestep) retyped to float32, when every node reading that input is a Cast to a floating type: diffusers' PyTorch
    /// UNet embeds the fractional timesteps of Euler-type schedulers as they are, and the retyped graph does the same (the
    /// Cast then converts float to float) where the integer graph could only take them truncated. Null when the input is
    /// not an integer or some node needs it as an integer. The element type is one varint byte, patched in place, so the
    /// rest of the file (weights included) is untouched.
    /// </summary>
    public static byte[]? RetypeIntegerInputToFloat(string modelPath, string inputName)
    {
        long? offset;
        using (FileStream file = File.OpenRead(modelPath))
        {
            offset = FindFloatableIntegerInput(file, inputName);
        }

        if (offset is not long at)
        {
            return null;
        }

        byte[] model = File.ReadAllBytes(modelPath);
        model[at] = Float;
        return model;
    }

    // The offset of the input's element-type byte when it is an integer that only Casts to floating types read; null otherwise.
    private static long? FindFloatableIntegerInput(Stream stream, string inputName)
    {
        var reader = new ProtobufReader(stream);
        long? elementTypeOffset = null;
        var consumers = new List<Node>();
        reader.ForEachField(stream.Length, (field, wireType) =>
        {
            if (field != ModelGraph || wireType != ProtobufReader.LengthDelimited)
            {
                return false;
            }

            reader.ForEachField(reader.ReadMessageEnd(), (graphField, graphWire) =>
            {
                if (graphWire != ProtobufReader.LengthDelimited)
                {
                    return false;
                }

                if (graphField == GraphInput)
                {
                    long? offset = ReadIntegerInput(reader, stream, reader.ReadMessageEnd(), inputName);
                    elementTypeOffset ??= offset;
                    return true;
                }

                if (graphField == GraphNode)
                {
                    Node node = ReadNode(reader, reader.ReadMessageEnd());
                    if (node.Inputs.Contains(inputName, StringComparer.Ordinal))
                    {
                        consumers.Add(node);
                    }

                    return true;
                }

                return false;
            });
            return true;
        });

        bool onlyFloatCasts = consumers.Count > 0 && consumers.All(n => n.OpType == "Cast" && n.CastTo is Float or Float16 or Double or BFloat16);
        return onlyFloatCasts ? elementTypeOffset : null;
    }

    // Within a ValueInfoProto: the offset of its tensor element type when it is the named input and an int32/int64 tensor.
    private static long? ReadIntegerInput(ProtobufReader reader, Stream stream, long end, string inputName)
    {
        string? name = null;
        long? offset = null;
        reader.ForEachField(end, (field, wireType) =>
        {
            if (wireType != ProtobufReader.LengthDelimited)
            {
                return false;
            }

            if (field == ValueInfoName)
            {
                name = reader.ReadString();
                return true;
            }

            if (field != ValueInfoType)
            {
                return false;
            }

            reader.ForEachField(reader.ReadMessageEnd(), (typeField, typeWire) =>
            {
                if (typeField != TypeTensor || typeWire != ProtobufReader.LengthDelimited)
                {
                    return false;
                }

                reader.ForEachField(reader.ReadMessageEnd(), (tensorField, tensorWire) =>
                {
                    if (tensorField != TensorElementType || tensorWire != ProtobufReader.Varint)
                    {
                        return false;
                    }

                    long at = stream.Position;
                    ulong elementType = reader.ReadVarint();
                    offset = elementType is Int64 or Int32 && stream.Position == at + 1 ? at : null;
                    return true;
                });
                return true;
            });
            return true;
        });

        return name == inputName ? offset : null;
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
        long? castTo = null;
        reader.ForEachField(end, (field, wireType) =>
        {
            if (wireType != ProtobufReader.LengthDelimited)
            {
                return false;
            }

            if (field == NodeAttribute)
            {
                (string name, long? value) = ReadIntAttribute(reader, reader.ReadMessageEnd());
                castTo = name == "to" ? value : castTo;
                return true;
            }

            if (field is not (NodeInput or NodeOutput or NodeOpType))
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
        return new Node(opType, [.. inputs], [.. outputs], opType == "Cast" ? castTo : null);
    }

    // An AttributeProto's name and integer value (null when it has none).
    private static (string Name, long? Value) ReadIntAttribute(ProtobufReader reader, long end)
    {
        string name = string.Empty;
        long? value = null;
        reader.ForEachField(end, (field, wireType) =>
        {
            if (field == AttributeName && wireType == ProtobufReader.LengthDelimited)
            {
                name = reader.ReadString();
                return true;
            }

            if (field == AttributeInt && wireType == ProtobufReader.Varint)
            {
                value = (long)reader.ReadVarint();
                return true;
            }

            return false;
        });
        return (name, value);
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
