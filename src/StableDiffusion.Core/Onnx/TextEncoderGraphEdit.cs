using Google.Protobuf;
using StableDiffusion.Onnx.Builders;

namespace StableDiffusion.Onnx;

/// <summary>Token embeddings added to a text encoder: rows for the ids from <paramref name="FirstId"/> on.</summary>
/// <param name="FirstId">The id of the first row (the tokenizer's first added id).</param>
/// <param name="Values">The rows, [count, hidden] row-major, in float32 (converted to the table's type).</param>
internal sealed record AddedTokenEmbeddings(int FirstId, float[] Values);

/// <summary>
/// Edits a CLIP text encoder graph (an ONNX export or a built graph) for what diffusers does around the module: the
/// prompt embeddings of every <c>clip_skip</c> as extra outputs, and token embeddings for the tokens of textual
/// inversions.
/// </summary>
/// <remarks>
/// <para>
/// Clip skip: the encoder's residual stream is found by its shape, not its node names (optimizers rename them): each layer
/// is <c>y = x + attention(norm1(x))</c>, <c>x' = y + mlp(norm2(y))</c>, so the tensors of the stream are the inputs of
/// those residual Adds that other nodes read too. The stream ends at the final layer norm, whose nodes (one
/// LayerNormalization, or the ReduceMean/Sub/Pow/... of an opset 14 export) are copied once per clip skip onto an earlier
/// tensor of the stream: output <c>clip_skip_n</c> is <c>final_layer_norm(hidden_states[-(n + 1)])</c>.
/// </para>
/// <para>
/// Token embeddings: the Gather that reads the token embedding table with the ids is replaced by one that reads the table
/// for the vocabulary's ids and a second, small table for the added ids, so the large table is neither copied nor
/// changed (it may be external data).
/// </para>
/// </remarks>
internal static class TextEncoderGraphEdit
{
    private const int Int64Type = 7;

    /// <summary>The edited model.</summary>
    /// <param name="model">The model's bytes.</param>
    /// <param name="addClipSkips">Whether to add the outputs <c>clip_skip_1</c> to <c>clip_skip_{layers}</c>.</param>
    /// <param name="addedTokens">Rows to add to the token embedding, or null.</param>
    /// <returns>The edited model, and the number of clip skip outputs added.</returns>
    /// <exception cref="InvalidDataException">The graph does not have the structure of a CLIP text encoder (the message says what is missing).</exception>
    public static (byte[] Model, int ClipSkips) Apply(ReadOnlySpan<byte> model, bool addClipSkips, AddedTokenEmbeddings? addedTokens)
    {
        ModelProto proto;
        try
        {
            proto = ModelProto.Parser.ParseFrom(model);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"The file is not a valid ONNX model: {e.Message}", e);
        }

        GraphProto graph = proto.Graph ?? throw new InvalidDataException("The model has no graph.");
        // The output diffusers uses as prompt embeddings: last_hidden_state, else the first (as TextEncoderModel reads it).
        string lastHiddenStateName = graph.Output.Any(o => o.Name == ClipTextModel.LastHiddenStateName)
            ? ClipTextModel.LastHiddenStateName
            : graph.Output.FirstOrDefault()?.Name ?? throw new InvalidDataException("The model's graph has no outputs.");
        int clipSkips = addClipSkips ? AddClipSkipOutputs(graph, lastHiddenStateName) : 0;
        if (addedTokens is not null)
        {
            long opset = proto.OpsetImport.Where(o => string.IsNullOrEmpty(o.Domain)).Select(o => o.Version).DefaultIfEmpty(13).Max();
            AddTokenEmbeddings(graph, addedTokens, opset);
        }

        return (proto.ToByteArray(), clipSkips);
    }

    private static int AddClipSkipOutputs(GraphProto graph, string lastHiddenStateName)
    {
        var producers = new Dictionary<string, int>(StringComparer.Ordinal);
        var consumers = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < graph.Node.Count; i++)
        {
            foreach (string output in graph.Node[i].Output)
            {
                producers[output] = i;
            }

            foreach (string input in graph.Node[i].Input.Distinct())
            {
                consumers[input] = consumers.GetValueOrDefault(input) + 1;
            }
        }

        var constants = new HashSet<string>(graph.Initializer.Select(t => t.Name), StringComparer.Ordinal);
        constants.UnionWith(graph.Node.Where(n => n.OpType == "Constant").SelectMany(n => n.Output));
        // Exporters deduplicate equal weights into Identity nodes over one initializer.
        constants.UnionWith(graph.Node.Where(n => n.OpType == "Identity" && n.Input.Count == 1 && constants.Contains(n.Input[0])).SelectMany(n => n.Output));

        // The residual input of a residual Add: a computed tensor that some other node reads too.
        string? ResidualInput(string tensor) =>
            producers.TryGetValue(tensor, out int at) && graph.Node[at] is { OpType: "Add", Input.Count: 2 } add
                ? add.Input.FirstOrDefault(i => !constants.Contains(i) && consumers.GetValueOrDefault(i) >= 2)
                : null;

        // The end of the stream: the nearest tensor above the output that a residual Add makes.
        string? last = null;
        var queue = new Queue<string>([lastHiddenStateName]);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        while (last is null && queue.TryDequeue(out string? tensor))
        {
            if (!seen.Add(tensor) || !producers.TryGetValue(tensor, out int at))
            {
                continue;
            }

            if (ResidualInput(tensor) is not null)
            {
                last = tensor;
                break;
            }

            foreach (string input in graph.Node[at].Input.Where(i => !constants.Contains(i)))
            {
                queue.Enqueue(input);
            }
        }

        // The stream, from the end back to the embeddings: x_L, y_L, x_{L-1}, ..., y_1, x_0.
        var stream = new List<string>();
        for (string? tensor = last; tensor is not null; tensor = ResidualInput(tensor))
        {
            stream.Add(tensor);
        }

        // The stream starts at the embeddings: token embeddings (a Gather reading the ids) plus position embeddings.
        string[] inputs = [.. graph.Input.Select(i => i.Name)];
        bool startsAtEmbeddings = stream.Count > 0 && producers.TryGetValue(stream[^1], out int first) && graph.Node[first].OpType == "Add"
            && graph.Node[first].Input.Any(i => producers.TryGetValue(i, out int p) && graph.Node[p] is { OpType: "Gather", Input.Count: 2 } gather && ReadsGraphInput(graph, gather.Input[1], inputs));
        if (last is null || stream.Count < 3 || stream.Count % 2 == 0 || !startsAtEmbeddings)
        {
            throw new InvalidDataException(
                $"The text encoder's layers were not found above its output '{lastHiddenStateName}' (a chain of residual Adds ending in the final layer norm), so its earlier hidden states cannot be added for clip skip.");
        }

        HashSet<int> finalNorm = NodesBetween(graph, producers, last, lastHiddenStateName);
        int layers = stream.Count / 2;
        for (int clipSkip = 1; clipSkip <= layers; clipSkip++)
        {
            string suffix = $"/{ClipTextModel.ClipSkipOutputName(clipSkip)}";
            string Rename(string tensor) =>
                tensor == last ? stream[2 * clipSkip]
                : tensor == lastHiddenStateName ? ClipTextModel.ClipSkipOutputName(clipSkip)
                : finalNorm.Contains(producers.GetValueOrDefault(tensor, -1)) ? tensor + suffix
                : tensor;

            foreach (int at in finalNorm.Order())
            {
                NodeProto copy = graph.Node[at].Clone();
                copy.Name += suffix;
                for (int i = 0; i < copy.Input.Count; i++)
                {
                    copy.Input[i] = Rename(copy.Input[i]);
                }

                for (int i = 0; i < copy.Output.Count; i++)
                {
                    copy.Output[i] = copy.Output[i].Length == 0 ? string.Empty : Rename(copy.Output[i]);
                }

                graph.Node.Add(copy);
            }

            graph.Output.Add(new ValueInfoProto { Name = ClipTextModel.ClipSkipOutputName(clipSkip) });
        }

        return layers;
    }

    // The nodes on some path from `from` to `to`: descendants of `from` that `to` depends on.
    private static HashSet<int> NodesBetween(GraphProto graph, Dictionary<string, int> producers, string from, string to)
    {
        var above = new HashSet<int>();
        var stack = new Stack<string>([to]);
        while (stack.TryPop(out string? tensor))
        {
            if (tensor != from && producers.TryGetValue(tensor, out int at) && above.Add(at))
            {
                foreach (string input in graph.Node[at].Input)
                {
                    stack.Push(input);
                }
            }
        }

        var reached = new HashSet<string>([from], StringComparer.Ordinal);
        var between = new HashSet<int>();
        for (int i = 0; i < graph.Node.Count; i++)
        {
            if (above.Contains(i) && graph.Node[i].Input.Any(reached.Contains))
            {
                between.Add(i);
                reached.UnionWith(graph.Node[i].Output);
            }
        }

        return between;
    }

    private static void AddTokenEmbeddings(GraphProto graph, AddedTokenEmbeddings added, long opset)
    {
        var initializers = graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        string[] inputs = [.. graph.Input.Select(i => i.Name)];
        int at = -1;
        for (int i = 0; i < graph.Node.Count && at < 0; i++)
        {
            NodeProto node = graph.Node[i];
            if (node.OpType == "Gather" && node.Input.Count == 2 && initializers.TryGetValue(node.Input[0], out TensorProto? table) && table.Dims.Count == 2
                && ReadsGraphInput(graph, node.Input[1], inputs))
            {
                at = i;
            }
        }

        if (at < 0)
        {
            throw new InvalidDataException("The text encoder has no Gather that reads a token embedding table with the input ids, so textual inversion tokens cannot be added to it.");
        }

        NodeProto gather = graph.Node[at];
        TensorProto vocabulary = initializers[gather.Input[0]];
        long rows = vocabulary.Dims[0], hidden = vocabulary.Dims[1];
        if (added.Values.Length % hidden != 0)
        {
            throw new InvalidDataException($"The added token embeddings have {added.Values.Length} values, not a whole number of rows of the text encoder's width {hidden}.");
        }

        string prefix = gather.Output[0] + "/added_tokens";
        var extra = new TensorProto { Name = prefix + "/table", DataType = vocabulary.DataType };
        extra.Dims.Add(added.Values.Length / hidden);
        extra.Dims.Add(hidden);
        extra.RawData = vocabulary.DataType switch
        {
            1 => ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(added.Values.AsSpan())),
            10 => ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(added.Values.Select(v => (Half)v).ToArray().AsSpan())),
            _ => throw new InvalidDataException($"The text encoder's token embedding has element type {vocabulary.DataType}; textual inversion supports float32 and float16 tables."),
        };
        graph.Initializer.Add(extra);
        graph.Initializer.Add(Int64Scalar(prefix + "/last_row", rows - 1));
        graph.Initializer.Add(Int64Scalar(prefix + "/first_id", added.FirstId));
        graph.Initializer.Add(Int64Scalar(prefix + "/zero", 0));

        NodeProto Node(string op, string name, string[] nodeInputs, params AttributeProto[] attributes)
        {
            var node = new NodeProto { OpType = op, Name = $"{prefix}/{name}" };
            node.Input.AddRange(nodeInputs);
            node.Output.Add($"{prefix}/{name}_output");
            node.Attribute.AddRange(attributes);
            return node;
        }

        NodeProto ids = Node("Cast", "ids", [gather.Input[1]], new AttributeProto { Name = "to", I = Int64Type, Type = AttributeProto.Types.AttributeType.Int });
        NodeProto vocabularyIds = Node("Min", "vocabulary_ids", [ids.Output[0], prefix + "/last_row"]);
        NodeProto vocabularyRows = Node("Gather", "vocabulary_rows", [gather.Input[0], vocabularyIds.Output[0]]);
        NodeProto offsets = Node("Sub", "offsets", [ids.Output[0], prefix + "/first_id"]);
        NodeProto addedIds = Node("Max", "added_ids", [offsets.Output[0], prefix + "/zero"]);
        NodeProto addedRows = Node("Gather", "added_rows", [extra.Name, addedIds.Output[0]]);
        NodeProto isAdded = Node("GreaterOrEqual", "is_added", [ids.Output[0], prefix + "/first_id"]);
        NodeProto mask;
        if (opset >= 13)
        {
            graph.Initializer.Add(Int64Vector(prefix + "/last_axis", -1));
            mask = Node("Unsqueeze", "mask", [isAdded.Output[0], prefix + "/last_axis"]);
        }
        else
        {
            var axes = new AttributeProto { Name = "axes", Type = AttributeProto.Types.AttributeType.Ints };
            axes.Ints.Add(-1);
            mask = Node("Unsqueeze", "mask", [isAdded.Output[0]], axes);
        }

        var select = new NodeProto { OpType = "Where", Name = prefix + "/select" };
        select.Input.AddRange([mask.Output[0], addedRows.Output[0], vocabularyRows.Output[0]]);
        select.Output.Add(gather.Output[0]);

        graph.Node.RemoveAt(at);
        int position = at;
        foreach (NodeProto node in new[] { ids, vocabularyIds, vocabularyRows, offsets, addedIds, addedRows, isAdded, mask, select })
        {
            graph.Node.Insert(position++, node);
        }
    }

    // Whether the tensor is a graph input, possibly through nodes that keep its values (Cast, Identity, reshapes: the
    // export views the ids as [-1, sequence]).
    private static bool ReadsGraphInput(GraphProto graph, string tensor, string[] inputs)
    {
        for (int hops = 0; hops < 4; hops++)
        {
            if (inputs.Contains(tensor))
            {
                return true;
            }

            NodeProto? producer = graph.Node.FirstOrDefault(n => n.Output.Contains(tensor));
            if (producer is not { OpType: "Cast" or "Identity" or "Reshape" or "Squeeze" or "Unsqueeze" or "Flatten" } || producer.Input.Count == 0)
            {
                return false;
            }

            tensor = producer.Input[0];
        }

        return false;
    }

    private static TensorProto Int64Scalar(string name, long value)
    {
        var tensor = new TensorProto { Name = name, DataType = Int64Type };
        tensor.Int64Data.Add(value);
        return tensor;
    }

    private static TensorProto Int64Vector(string name, long value)
    {
        TensorProto tensor = Int64Scalar(name, value);
        tensor.Dims.Add(1);
        return tensor;
    }
}
