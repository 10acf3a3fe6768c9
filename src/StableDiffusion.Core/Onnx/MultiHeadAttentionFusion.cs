using System.Buffers.Binary;
using Google.Protobuf;

namespace StableDiffusion.Onnx;

/// <summary>
/// Rewrites the attention of diffusers' ONNX exports into ONNX Runtime's <c>com.microsoft.MultiHeadAttention</c>, whose
/// CPU kernel computes softmax(q kᵀ) v in tiles and never holds the whole [batch, heads, queries, keys] probability
/// matrix: a 768x768 image's UNet attention needs megabytes instead of gigabytes.
/// </summary>
/// <remarks>
/// <para>The pattern is what PyTorch's exporter writes for diffusers' <c>Attention</c> (scaled dot-product attention, no
/// mask, no dropout), for self- and cross-attention alike:</para>
/// <code>
/// q = Transpose[0,2,1,3](Reshape(q_proj, [B, -1, heads, d]))      k, v likewise (kᵀ: Transpose[0,2,3,1])
/// s = Cast(1 / Sqrt(Cast(Shape(q)[-1:])))                          or a constant
/// o = Softmax[-1](MatMul(q · Sqrt(s), kᵀ · Sqrt(s))) · v
/// out = Reshape(Transpose[0,2,1,3](o), [B, -1, heads · d])          with d = Shape(k_proj)[2] / heads
/// </code>
/// <para>becomes <c>out = MultiHeadAttention(q_proj, k_proj, v_proj)</c> with <c>num_heads</c> = heads. Every node, every
/// shape constant and every consumer is checked: the projections must be a MatMul by a [in, heads · d] weight (plus a
/// bias), the same width for q, k and v; the reshapes must take the same batch, the head count and d as above; no
/// intermediate may be read outside the pattern. An attention that differs in anything stays as it is. The dynamic scale
/// is 1 / sqrt(d), which is MultiHeadAttention's own default; a constant one becomes its <c>scale</c>. Nodes that computed
/// only the removed pattern's shapes are removed with it.</para>
/// </remarks>
internal static class MultiHeadAttentionFusion
{
    // TensorProto.DataType values, which ONNX Runtime's element types share.
    private const int Float = (int)TensorElementType.Float;
    private const int Int64 = (int)TensorElementType.Int64;

    /// <summary>The model with its attention rewritten, and how many attentions were; null when none matched.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a well-formed ONNX model.</exception>
    public static (byte[] Model, int Attentions)? Fuse(ReadOnlySpan<byte> model)
    {
        ModelProto proto = OnnxOutline.ReadModel(model);

        if (proto.Graph is not { } graph || !ImportsDefaultDomainFrom(proto, 13))
        {
            return null;
        }

        var index = new GraphIndex(graph);
        var removed = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance);
        var replacements = new Dictionary<NodeProto, NodeProto>(ReferenceEqualityComparer.Instance);
        foreach (NodeProto softmax in graph.Node.Where(n => n.OpType == "Softmax" && n.Domain.Length == 0))
        {
            if (Match(index, softmax) is not { } match || match.Nodes.Overlaps(removed))
            {
                continue;
            }

            removed.UnionWith(match.Nodes);
            replacements[match.Output] = match.Fused;
        }

        if (replacements.Count == 0)
        {
            return null;
        }

        // The fused node takes the place of the pattern's last node, after its inputs and before every reader of its output.
        var nodes = new List<NodeProto>(graph.Node.Count);
        foreach (NodeProto node in graph.Node)
        {
            if (replacements.TryGetValue(node, out NodeProto? fused))
            {
                nodes.Add(fused);
            }
            else if (!removed.Contains(node))
            {
                nodes.Add(node);
            }
        }

        RemoveUnused(graph, nodes, index.Ancestors(removed));
        if (!proto.OpsetImport.Any(o => o.Domain == GraphBuilder.MicrosoftDomain))
        {
            proto.OpsetImport.Add(new OperatorSetIdProto { Domain = GraphBuilder.MicrosoftDomain, Version = 1 });
        }

        return (proto.ToByteArray(), replacements.Count);
    }

    // The pattern's Softmax semantics (along the last axis only) and the Unsqueeze form read here are opset 13's.
    private static bool ImportsDefaultDomainFrom(ModelProto model, long version) =>
        model.OpsetImport.Any(o => o.Domain is ("" or "ai.onnx") && o.Version >= version);

    private static AttentionMatch? Match(GraphIndex graph, NodeProto softmax)
    {
        var nodes = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance) { softmax };
        if (graph.Attribute(softmax, "axis")?.I is not (-1 or 3)
            || graph.Producer(softmax, 0, "MatMul") is not { } scores
            || graph.SoleConsumer(softmax.Output[0], "MatMul") is not { } weighted || weighted.Input[0] != softmax.Output[0]
            || graph.Producer(scores, 0, "Mul") is not { } scaledQuery
            || graph.Producer(scores, 1, "Mul") is not { } scaledKey
            || ScaledOperand(graph, scaledQuery, [0, 2, 1, 3]) is not var (queryHeads, queryScale)
            || ScaledOperand(graph, scaledKey, [0, 2, 3, 1]) is not var (keyHeads, keyScale)
            || graph.Producer(weighted, 1, "Transpose") is not { } valueHeads || !graph.HasPermutation(valueHeads, [0, 2, 1, 3])
            || graph.SoleConsumer(weighted.Output[0], "Transpose") is not { } merged || !graph.HasPermutation(merged, [0, 2, 1, 3])
            || graph.SoleConsumer(merged.Output[0], "Reshape") is not { } output || output.Input[0] != merged.Output[0])
        {
            return null;
        }

        nodes.UnionWith([scores, weighted, scaledQuery, scaledKey, queryHeads, keyHeads, valueHeads, merged, output]);

        // The scale: both operands multiplied by the square root of one scale, computed from q's head size or constant.
        if (graph.Producer(queryScale, "Sqrt") is not { } querySqrt || graph.Producer(keyScale, "Sqrt") is not { } keySqrt
            || querySqrt.Input[0] != keySqrt.Input[0])
        {
            return null;
        }

        nodes.UnionWith([querySqrt, keySqrt]);
        float? scale = null;
        if (graph.ScalarFloat(querySqrt.Input[0]) is float constant)
        {
            scale = constant;
        }
        else if (DefaultScaleNodes(graph, querySqrt.Input[0], queryHeads.Output[0]) is { } scaleNodes)
        {
            nodes.UnionWith(scaleNodes);
        }
        else
        {
            return null;
        }

        // The head split: Reshape(projection, [B, -1, heads, d]) under each transpose, one B, one d = width(k) / heads.
        if (HeadSplit(graph, queryHeads) is not var (query, queryShape, queryReshape)
            || HeadSplit(graph, keyHeads) is not var (key, keyShape, keyReshape)
            || HeadSplit(graph, valueHeads) is not var (value, valueShape, valueReshape)
            || queryShape != keyShape || keyShape != valueShape
            || HeadSize(graph, queryShape.HeadSize, key) != queryShape.Heads
            || ProjectionWidth(graph, query) is not long width || ProjectionWidth(graph, key) != width || ProjectionWidth(graph, value) != width
            || width % queryShape.Heads != 0
            || !IsMergeShape(graph, output.Input[1], queryShape))
        {
            return null;
        }

        nodes.UnionWith([queryReshape, keyReshape, valueReshape]);

        // Nothing the pattern computes may be read outside it, except its result.
        foreach (NodeProto node in nodes)
        {
            foreach (string tensor in node.Output)
            {
                if (node != output && (graph.IsGraphOutput(tensor) || graph.Consumers(tensor).Any(c => !nodes.Contains(c))))
                {
                    return null;
                }
            }
        }

        var fused = new NodeProto
        {
            Name = NodeName(graph, output.Name),
            OpType = "MultiHeadAttention",
            Domain = GraphBuilder.MicrosoftDomain,
            Input = { query, key, value },
            Output = { output.Output[0] },
            Attribute = { new AttributeProto { Name = "num_heads", Type = AttributeProto.Types.AttributeType.Int, I = queryShape.Heads } },
        };
        if (scale is float s)
        {
            fused.Attribute.Add(new AttributeProto { Name = "scale", Type = AttributeProto.Types.AttributeType.Float, F = s });
        }

        return new AttentionMatch(nodes, output, fused);
    }

    // Mul(Transpose[perm](x), factor) in either order: the transpose and the factor's tensor.
    private static (NodeProto Heads, string Factor)? ScaledOperand(GraphIndex graph, NodeProto mul, long[] permutation)
    {
        for (int side = 0; side < 2; side++)
        {
            if (graph.Producer(mul, side, "Transpose") is { } transpose && graph.HasPermutation(transpose, permutation))
            {
                return (transpose, mul.Input[1 - side]);
            }
        }

        return null;
    }

    // Cast(Div(1.0, Sqrt(Cast(Slice(Shape(heads), [-1], [max]))))) to float: 1 / sqrt(d), d the last axis of the q heads.
    private static NodeProto[]? DefaultScaleNodes(GraphIndex graph, string scale, string queryHeads)
    {
        if (graph.Producer(scale, "Cast") is not { } outerCast || graph.Attribute(outerCast, "to")?.I != Float
            || graph.Producer(outerCast, 0, "Div") is not { } reciprocal || graph.ScalarFloat(reciprocal.Input[0]) != 1f
            || graph.Producer(reciprocal, 1, "Sqrt") is not { } sqrt
            || graph.Producer(sqrt, 0, "Cast") is not { } innerCast || graph.Attribute(innerCast, "to")?.I != Float
            || graph.Producer(innerCast, 0, "Slice") is not { } slice || slice.Input.Count != 3
            || graph.Int64s(slice.Input[1]) is not [-1] || graph.Int64s(slice.Input[2]) is not [long.MaxValue]
            || graph.Producer(slice, 0, "Shape") is not { } shape || shape.Input[0] != queryHeads || shape.Attribute.Count != 0)
        {
            return null;
        }

        return [outerCast, reciprocal, sqrt, innerCast, slice, shape];
    }

    // Reshape(projection, [B, -1, heads, d]) under a head transpose: the projection, the shape, and the reshape.
    private static (string Projection, HeadShape Shape, NodeProto Reshape)? HeadSplit(GraphIndex graph, NodeProto transpose)
    {
        if (graph.Producer(transpose, 0, "Reshape") is not { } reshape || graph.Attribute(reshape, "allowzero")?.I is not (null or 0)
            || graph.Producer(reshape, 1, "Concat") is not { } concat || graph.Attribute(concat, "axis")?.I != 0 || concat.Input.Count != 4
            || graph.Unsqueezed(concat.Input[0]) is not { } batch || graph.Int64s(concat.Input[1]) is not [-1]
            || graph.Int64s(concat.Input[2]) is not [long heads] || heads < 1
            || graph.Unsqueezed(concat.Input[3]) is not { } headSize
            || !IsBatchSize(graph, batch))
        {
            return null;
        }

        return (reshape.Input[0], new HeadShape(batch, heads, headSize), reshape);
    }

    // Gather(Shape(x), 0): the batch size of some tensor, as the exporter takes it from the attention's input.
    private static bool IsBatchSize(GraphIndex graph, string batch) =>
        graph.Producer(batch, "Gather") is { } gather && graph.Attribute(gather, "axis")?.I is (null or 0)
        && graph.Int64Scalar(gather.Input[1]) == 0 && graph.Producer(gather, 0, "Shape") is { Attribute.Count: 0 };

    // d = Shape(k_proj)[2] / heads, through any number of Casts to int64: the divisor, or null when d is computed otherwise.
    private static long? HeadSize(GraphIndex graph, string headSize, string key)
    {
        NodeProto? node = graph.Producer(headSize, null);
        while (node is { OpType: "Cast", Domain: "" } && graph.Attribute(node, "to")?.I == Int64)
        {
            node = graph.Producer(node.Input[0], null);
        }

        if (node is not { OpType: "Div", Domain: "" } || graph.Producer(node, 0, "Gather") is not { } gather
            || graph.Attribute(gather, "axis")?.I is not (null or 0) || graph.Int64Scalar(gather.Input[1]) != 2
            || graph.Producer(gather, 0, "Shape") is not { Attribute.Count: 0 } shape || shape.Input[0] != key)
        {
            return null;
        }

        return graph.Int64Scalar(node.Input[1]) ?? (graph.Int64s(node.Input[1]) is [long divisor] ? divisor : null);
    }

    // [B, -1, heads · d] as Concat(Unsqueeze(B), [-1], Unsqueeze(d · heads)); d alone for one head (the exporter folds · 1).
    private static bool IsMergeShape(GraphIndex graph, string shape, HeadShape heads)
    {
        if (graph.Producer(shape, "Concat") is not { } concat || graph.Attribute(concat, "axis")?.I != 0 || concat.Input.Count != 3
            || graph.Unsqueezed(concat.Input[0]) != heads.Batch || graph.Int64s(concat.Input[1]) is not [-1]
            || graph.Unsqueezed(concat.Input[2]) is not { } width)
        {
            return false;
        }

        if (width == heads.HeadSize)
        {
            return heads.Heads == 1;
        }

        return graph.Producer(width, "Mul") is { } mul
            && ((mul.Input[0] == heads.HeadSize && graph.Int64Scalar(mul.Input[1]) == heads.Heads)
                || (mul.Input[1] == heads.HeadSize && graph.Int64Scalar(mul.Input[0]) == heads.Heads));
    }

    // The output width of x @ W (+ b) with W a [in, out] float32 initializer, the form of diffusers' to_q, to_k and to_v.
    // Float32 only: MultiHeadAttention's CPU kernel has no other type, and float16 exports are for GPUs.
    private static long? ProjectionWidth(GraphIndex graph, string tensor)
    {
        NodeProto? node = graph.Producer(tensor, null);
        if (node is { OpType: "Add", Domain: "" })
        {
            for (int side = 0; side < 2; side++)
            {
                if (graph.Initializer(node.Input[side]) is { Dims.Count: 1 } bias && graph.Producer(node.Input[1 - side], "MatMul") is { } product
                    && ProjectionWidth(graph, product.Output[0]) is long width && bias.Dims[0] == width)
                {
                    return width;
                }
            }

            return null;
        }

        return node is { OpType: "MatMul", Domain: "" } && graph.Initializer(node.Input[1]) is { Dims.Count: 2, DataType: Float } weight ? weight.Dims[1] : null;
    }

    private static string NodeName(GraphIndex graph, string near)
    {
        int slash = near.LastIndexOf('/');
        string name = slash >= 0 ? $"{near[..slash]}/MultiHeadAttention" : "MultiHeadAttention";
        string unique = name;
        for (int i = 1; graph.HasNodeNamed(unique); i++)
        {
            unique = $"{name}_{i}";
        }

        graph.ClaimNodeName(unique);
        return unique;
    }

    // Drops the removed patterns' ancestors left computing nothing anyone reads (their shape arithmetic), then the value
    // infos of tensors no longer produced. Nodes elsewhere stay, even unused ones.
    private static void RemoveUnused(GraphProto graph, List<NodeProto> nodes, HashSet<NodeProto> candidates)
    {
        var needed = new HashSet<string>(graph.Output.Select(o => o.Name), StringComparer.Ordinal);
        var kept = new List<NodeProto>(nodes.Count);
        for (int i = nodes.Count - 1; i >= 0; i--)
        {
            NodeProto node = nodes[i];
            if (!candidates.Contains(node) || node.Output.Any(needed.Contains))
            {
                kept.Add(node);
                needed.UnionWith(node.Input.Where(name => name.Length > 0));
                needed.UnionWith(node.Attribute.Where(a => a.G is not null).SelectMany(a => OuterNames(a.G)));
            }
        }

        kept.Reverse();
        var produced = new HashSet<string>(kept.SelectMany(n => n.Output), StringComparer.Ordinal);
        graph.Node.Clear();
        graph.Node.AddRange(kept);
        foreach (ValueInfoProto info in graph.ValueInfo.Where(v => !produced.Contains(v.Name)).ToList())
        {
            graph.ValueInfo.Remove(info);
        }
    }

    // The names a subgraph may read from the enclosing graph (all its node inputs; over-approximated, which only keeps more).
    private static IEnumerable<string> OuterNames(GraphProto subgraph) =>
        subgraph.Node.SelectMany(n => n.Input.Concat(n.Attribute.Where(a => a.G is not null).SelectMany(a => OuterNames(a.G))));

    private sealed record AttentionMatch(HashSet<NodeProto> Nodes, NodeProto Output, NodeProto Fused);

    private sealed record HeadShape(string Batch, long Heads, string HeadSize);

    /// <summary>Who produces and who reads each tensor, and the constant values of a graph.</summary>
    private sealed class GraphIndex
    {
        private readonly Dictionary<string, NodeProto> _producers = new(StringComparer.Ordinal);
        private readonly Dictionary<string, List<NodeProto>> _consumers = new(StringComparer.Ordinal);
        private readonly Dictionary<string, TensorProto> _initializers = new(StringComparer.Ordinal);
        private readonly HashSet<string> _outputs;
        private readonly HashSet<string> _nodeNames;

        public GraphIndex(GraphProto graph)
        {
            foreach (NodeProto node in graph.Node)
            {
                foreach (string output in node.Output)
                {
                    _producers[output] = node;
                }

                foreach (string input in node.Input.Concat(node.Attribute.Where(a => a.G is not null).SelectMany(a => OuterNames(a.G))))
                {
                    if (!_consumers.TryGetValue(input, out List<NodeProto>? readers))
                    {
                        _consumers[input] = readers = [];
                    }

                    readers.Add(node);
                }
            }

            // An initializer that is also a graph input is a default the caller may override: not a constant.
            var inputs = new HashSet<string>(graph.Input.Select(i => i.Name), StringComparer.Ordinal);
            foreach (TensorProto tensor in graph.Initializer.Where(t => !inputs.Contains(t.Name)))
            {
                _initializers[tensor.Name] = tensor;
            }

            _outputs = new HashSet<string>(graph.Output.Select(o => o.Name), StringComparer.Ordinal);
            _nodeNames = new HashSet<string>(graph.Node.Select(n => n.Name), StringComparer.Ordinal);
        }

        /// <summary>Every node that <paramref name="nodes"/> depend on, directly or not.</summary>
        public HashSet<NodeProto> Ancestors(IEnumerable<NodeProto> nodes)
        {
            var ancestors = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance);
            var pending = new Stack<NodeProto>(nodes);
            while (pending.TryPop(out NodeProto? node))
            {
                foreach (string input in node.Input)
                {
                    if (_producers.TryGetValue(input, out NodeProto? producer) && ancestors.Add(producer))
                    {
                        pending.Push(producer);
                    }
                }
            }

            return ancestors;
        }

        public IReadOnlyList<NodeProto> Consumers(string tensor) => _consumers.TryGetValue(tensor, out List<NodeProto>? readers) ? readers : [];

        public bool IsGraphOutput(string tensor) => _outputs.Contains(tensor);

        public bool HasNodeNamed(string name) => _nodeNames.Contains(name);

        public void ClaimNodeName(string name) => _nodeNames.Add(name);

        public TensorProto? Initializer(string tensor) => _initializers.GetValueOrDefault(tensor);

        /// <summary>The node of the default domain with one output that produces <paramref name="tensor"/>, of the given type when not null.</summary>
        public NodeProto? Producer(string tensor, string? opType) =>
            _producers.TryGetValue(tensor, out NodeProto? node) && node.Domain.Length == 0 && node.Output.Count == 1
            && (opType is null || node.OpType == opType) ? node : null;

        /// <summary>The producer of input <paramref name="input"/> of <paramref name="node"/>.</summary>
        public NodeProto? Producer(NodeProto node, int input, string opType) =>
            input < node.Input.Count ? Producer(node.Input[input], opType) : null;

        /// <summary>The only node reading <paramref name="tensor"/>, when it has the type and the tensor is no graph output.</summary>
        public NodeProto? SoleConsumer(string tensor, string opType) =>
            Consumers(tensor) is [{ Domain: "" } node] && node.OpType == opType && !IsGraphOutput(tensor) ? node : null;

        public AttributeProto? Attribute(NodeProto node, string name) => node.Attribute.LastOrDefault(a => a.Name == name);

        public bool HasPermutation(NodeProto transpose, long[] permutation) =>
            Attribute(transpose, "perm")?.Ints is { } perm && perm.SequenceEqual(permutation);

        /// <summary>x where <paramref name="tensor"/> = Unsqueeze(x, axes [0]) (axes as the opset 13 input).</summary>
        public string? Unsqueezed(string tensor) =>
            Producer(tensor, "Unsqueeze") is { Input.Count: 2 } unsqueeze && Int64s(unsqueeze.Input[1]) is [0] ? unsqueeze.Input[0] : null;

        /// <summary>The value of a constant int64 scalar (rank 0).</summary>
        public long? Int64Scalar(string tensor) => Constant(tensor) is { Dims.Count: 0 } t && Int64Values(t) is [long value] ? value : null;

        /// <summary>The values of a constant int64 vector (rank 1).</summary>
        public long[]? Int64s(string tensor) => Constant(tensor) is { Dims.Count: 1 } t ? Int64Values(t) : null;

        /// <summary>The value of a constant float32 scalar (rank 0, or one element of rank 1).</summary>
        public float? ScalarFloat(string tensor)
        {
            if (Constant(tensor) is not { DataType: Float } t || t.Dims.Count > 1 || t.Dims.Aggregate(1L, (a, d) => a * d) != 1)
            {
                return null;
            }

            return t.RawData.Length == 4 ? BinaryPrimitives.ReadSingleLittleEndian(t.RawData.Span) : t.FloatData is [float value] ? value : null;
        }

        // A Constant node's value or an initializer, embedded in the file.
        private TensorProto? Constant(string tensor)
        {
            TensorProto? value = Producer(tensor, "Constant") is { } node
                ? node.Attribute is [{ Name: "value", T: { } t }] ? t : null
                : Initializer(tensor);
            return value is { DataLocation: TensorProto.Types.DataLocation.Default } ? value : null;
        }

        private static long[]? Int64Values(TensorProto tensor)
        {
            if (tensor.DataType != Int64)
            {
                return null;
            }

            long count = tensor.Dims.Aggregate(1L, (a, d) => a * d);
            if (tensor.RawData.Length > 0)
            {
                if (tensor.RawData.Length != count * sizeof(long))
                {
                    return null;
                }

                long[] values = new long[count];
                for (int i = 0; i < values.Length; i++)
                {
                    values[i] = BinaryPrimitives.ReadInt64LittleEndian(tensor.RawData.Span[(i * sizeof(long))..]);
                }

                return values;
            }

            return tensor.Int64Data.Count == count ? [.. tensor.Int64Data] : null;
        }
    }
}
