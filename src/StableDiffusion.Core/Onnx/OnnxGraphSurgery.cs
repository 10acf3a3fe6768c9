using Google.Protobuf;

namespace StableDiffusion.Onnx;

/// <summary>
/// The little editing of exported graphs the SDK needs: find the latent distribution inside diffusers' exported VAE
/// encoder, expose intermediate tensors as extra graph outputs, and let a UNet exported with an integer timestep take
/// the fractional timesteps diffusers' PyTorch UNet sees.
/// </summary>
/// <remarks>
/// diffusers' ONNX export of the VAE encoder samples its latents inside the graph with an unseeded <c>RandomNormalLike</c>
/// (<c>latent_sample = mean + std * randn</c>), so no seed could reproduce an image-to-image result. Exposing <c>mean</c>
/// and <c>std</c> lets the pipeline draw the noise from its own seeded generator, exactly as diffusers' PyTorch pipelines do.
/// </remarks>
internal static class OnnxGraphSurgery
{
    private const int GraphInputField = 11; // GraphProto.input

    // TensorProto.DataType values.
    private const int Float = 1;
    private const int Int32 = 6;
    private const int Int64 = 7;
    private const int Float16 = 10;
    private const int Double = 11;
    private const int BFloat16 = 16;

    /// <summary>
    /// In a graph whose output is <c>mean + std * noise</c> with the noise from a RandomNormal(Like) node (possibly through
    /// a Cast), the names of the mean and std tensors; null when the graph does not have that shape.
    /// </summary>
    /// <exception cref="InvalidDataException">The bytes are not a well-formed ONNX model.</exception>
    public static (string Mean, string Std)? FindSampledLatentDistribution(ReadOnlySpan<byte> model, string outputName)
    {
        var producers = new Dictionary<string, NodeOutline>(StringComparer.Ordinal);
        foreach (NodeOutline node in OnnxOutline.Read(model).Graph?.Node ?? [])
        {
            foreach (string output in node.Output)
            {
                producers[output] = node;
            }
        }

        if (!producers.TryGetValue(outputName, out NodeOutline? add) || add.OpType != "Add" || add.Input.Count != 2)
        {
            return null;
        }

        for (int a = 0; a < 2; a++)
        {
            if (!producers.TryGetValue(add.Input[a], out NodeOutline? mul) || mul.OpType != "Mul" || mul.Input.Count != 2)
            {
                continue;
            }

            for (int m = 0; m < 2; m++)
            {
                if (IsRandomNormal(mul.Input[m], producers))
                {
                    return (add.Input[1 - a], mul.Input[1 - m]);
                }
            }
        }

        return null;
    }

    /// <summary>
    /// The model with the named tensors added to the main graph's outputs (ONNX Runtime infers their types). A second
    /// <c>graph</c> field appended to the model is merged into the first by every protobuf parser (a repeated occurrence of a
    /// singular message field merges), so the original bytes are copied once and never re-encoded.
    /// </summary>
    public static byte[] AddGraphOutputs(ReadOnlySpan<byte> model, IEnumerable<string> tensorNames)
    {
        var outputs = new GraphProto();
        outputs.Output.AddRange(tensorNames.Select(name => new ValueInfoProto { Name = name }));
        var appended = new ModelProto { Graph = outputs };
        byte[] edited = new byte[model.Length + appended.CalculateSize()];
        model.CopyTo(edited);
        appended.WriteTo(edited.AsSpan(model.Length));
        return edited;
    }

    /// <summary>
    /// The model with its integer <paramref name="inputName"/> input (int64 or int32, as early UNet exports have the
    /// timestep) retyped to float32, when every node reading that input is a Cast to a floating type: diffusers' PyTorch
    /// UNet embeds the fractional timesteps of Euler-type schedulers as they are, and the retyped graph does the same (the
    /// Cast then converts float to float) where the integer graph could only take them truncated. Null when the input is
    /// not an integer or some node needs it as an integer. The element type is one varint byte, patched in place, so the
    /// rest of the file (weights included) is untouched.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not a well-formed ONNX model.</exception>
    public static byte[]? RetypeIntegerInputToFloat(string modelPath, string inputName)
    {
        GraphOutline? graph = OnnxOutline.Read(modelPath).Graph;
        ValueInfoProto? input = graph?.Input.FirstOrDefault(i => i.Name == inputName);
        if (input?.Type?.TensorType is not { ElemType: Int32 or Int64 })
        {
            return null;
        }

        NodeOutline[] consumers = [.. graph!.Node.Where(n => n.Input.Contains(inputName))];
        bool onlyFloatCasts = consumers.Length > 0 && consumers.All(n =>
            n.OpType == "Cast" && n.Attribute.LastOrDefault(a => a.Name == "to")?.I is Float or Float16 or Double or BFloat16);
        return onlyFloatCasts ? PatchElementType(File.ReadAllBytes(modelPath), input) : null;
    }

    // The input's ValueInfoProto as exporters write it (fields in number order) is found in the file, and the one byte its
    // float32 twin differs in is patched; null when the encoding is not found exactly once.
    private static byte[]? PatchElementType(byte[] model, ValueInfoProto input)
    {
        ValueInfoProto retyped = input.Clone();
        retyped.Type.TensorType.ElemType = Float;
        byte[] integer = Field(GraphInputField, input);
        byte[] floating = Field(GraphInputField, retyped);
        int at = model.AsSpan().IndexOf(integer);
        if (at < 0 || floating.Length != integer.Length || model.AsSpan(at + 1).IndexOf(integer) >= 0)
        {
            return null;
        }

        int changed = integer.AsSpan().CommonPrefixLength(floating);
        model[at + changed] = floating[changed];
        return model;
    }

    // A message as the value of field `number` of its parent (tag, length, bytes).
    private static byte[] Field(int number, IMessage message)
    {
        var stream = new MemoryStream();
        var output = new CodedOutputStream(stream);
        output.WriteTag(number, WireFormat.WireType.LengthDelimited);
        output.WriteMessage(message);
        output.Flush();
        return stream.ToArray();
    }

    private static bool IsRandomNormal(string tensor, Dictionary<string, NodeOutline> producers)
    {
        // Follow at most a few value-preserving nodes (Cast, Identity) back to the draw.
        for (int hops = 0; hops < 4 && producers.TryGetValue(tensor, out NodeOutline? node); hops++)
        {
            if (node.OpType is "RandomNormalLike" or "RandomNormal")
            {
                return true;
            }

            if (node.OpType is not ("Cast" or "Identity") || node.Input.Count == 0)
            {
                return false;
            }

            tensor = node.Input[0];
        }

        return false;
    }
}
