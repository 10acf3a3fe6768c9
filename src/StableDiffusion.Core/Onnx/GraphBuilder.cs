using System.Globalization;
using System.Runtime.InteropServices;
using Google.Protobuf;

namespace StableDiffusion.Onnx;

/// <summary>
/// Builds one ONNX graph: typed inputs and outputs with named dynamic dimensions, initializers (embedded constants, or
/// weights that stay in their file as external data), and nodes named after a scope of PyTorch module paths.
/// </summary>
/// <remarks>
/// <para>Node names follow PyTorch's exporter (<c>/down_blocks.0/resnets.1/conv1/Conv</c>, a suffix keeping them unique)
/// and a node's outputs are <c>{node}_output_{i}</c>; <see cref="Scope"/> enters a module, and <see cref="Parameter"/>
/// finds the module's weights by the same path (<c>down_blocks.0.resnets.1.conv1.weight</c>).</para>
/// <para>The graph imports the default ONNX domain at <see cref="Opset"/>, and <c>com.microsoft</c> once a node uses it.
/// Graph outputs carry their element type and shape; ONNX Runtime infers the rest when it loads the graph.</para>
/// <para>The builder knows which values nodes read, for fusions a builder module cannot see alone: a residual sum
/// (<see cref="Residual"/>) that the next norm reads first is taken into that norm's operator (<see cref="TakeResidual"/>),
/// with the bias of a convolution whose output only the sum read (<see cref="NodeWithBias"/>), or into the flavor's
/// operator that adds a sum of images with a bias (<see cref="ImageResidual"/>).</para>
/// </remarks>
internal sealed class GraphBuilder
{
    /// <summary>The ONNX opset of the default domain: 17 has LayerNormalization and still takes Reduce* axes as attributes.</summary>
    public const int Opset = 17;

    /// <summary>ONNX Runtime's contrib operators (MultiHeadAttention, GroupNorm, ...).</summary>
    public const string MicrosoftDomain = "com.microsoft";

    /// <summary>The IR version that goes with <see cref="Opset"/>.</summary>
    private const int IrVersion = 8;

    private readonly GraphProto _graph;
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _nodeCounts = new(StringComparer.Ordinal);
    private readonly Dictionary<(TensorElementType, ByteString), Value> _constants = [];
    private readonly Dictionary<string, Value> _parameters = new(StringComparer.Ordinal);
    private readonly SortedDictionary<string, long> _domains = new(StringComparer.Ordinal) { [string.Empty] = Opset };
    private readonly List<string> _scope = [];
    private readonly Dictionary<string, int> _readers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (NodeProto Node, Value Bias)> _detachableBiases = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _readsLeftWithoutBias = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ResidualSum> _unreadResiduals = new(StringComparer.Ordinal);
    private readonly HashSet<string> _residualOutputs = new(StringComparer.Ordinal);

    /// <summary>Creates an empty graph.</summary>
    /// <param name="name">The graph's name.</param>
    /// <param name="parameters">Where <see cref="Parameter"/> finds weights; null for a graph without any.</param>
    /// <param name="flavor">Which operators the module builders emit; <see cref="Builders.GraphFlavor.Plain"/> when null.</param>
    public GraphBuilder(string name = "main_graph", ParameterSource? parameters = null, Builders.GraphFlavor? flavor = null)
    {
        _graph = new GraphProto { Name = name };
        Parameters = parameters;
        Flavor = flavor ?? Builders.GraphFlavor.Plain;
    }

    /// <summary>Where <see cref="Parameter"/> finds weights.</summary>
    public ParameterSource? Parameters { get; }

    /// <summary>Which operators the module builders emit: plain ONNX, or ONNX Runtime's fused CUDA operators.</summary>
    public Builders.GraphFlavor Flavor { get; }

    /// <summary>The module path of the current scope (<c>down_blocks.0.resnets.1</c>; empty at the top).</summary>
    public string ScopePath => string.Join('.', _scope);

    /// <summary>Enters a module scope (a path segment such as <c>conv1</c> or <c>down_blocks.0</c>) until disposed.</summary>
    public ScopeExit Scope(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        _scope.Add(name);
        return new ScopeExit(this, _scope.Count);
    }

    /// <summary>Adds a graph input.</summary>
    public Value Input(string name, TensorElementType elementType, params ReadOnlySpan<Dim> shape)
    {
        Claim(name);
        _graph.Input.Add(ValueInfo(name, elementType, shape));
        return new Value(this, name, elementType);
    }

    /// <summary>
    /// Makes <paramref name="value"/> a graph output named <paramref name="name"/> (through an Identity node when the value
    /// has another name) with the given shape; without one, ONNX Runtime infers the shape (so a scalar output cannot be
    /// declared this way).
    /// </summary>
    public void Output(Value value, string name, params ReadOnlySpan<Dim> shape)
    {
        Read(value);
        if (value.Name != name)
        {
            Claim(name);
            _graph.Node.Add(new NodeProto { OpType = "Identity", Name = UniqueNodeName("Identity"), Input = { value.Name }, Output = { name } });
        }

        ValueInfoProto output = ValueInfo(name, value.ElementType, shape);
        if (shape.IsEmpty)
        {
            output.Type.TensorType.Shape = null;
        }

        _graph.Output.Add(output);
    }

    /// <summary>The weight <c>{scope}.{name}</c> from <see cref="Parameters"/>, added once however often it is asked for.</summary>
    /// <param name="name">The name within the current scope, such as <c>weight</c>.</param>
    /// <param name="shape">The shape to view the stored elements in (such as [C, 1, 1] for a per-channel bias), or the shape the
    /// weight must have when of the stored rank; null for the stored one.</param>
    /// <param name="elementType">The type to compute in when an operator needs another than the graph's (float32 norm scales in a float16 graph); null for the graph's.</param>
    /// <exception cref="Models.ModelLoadException">The weight is missing, has another number of elements, or (asked for at its
    /// own rank) another shape.</exception>
    public Value Parameter(string name, long[]? shape = null, TensorElementType? elementType = null)
    {
        if (Parameters is null)
        {
            throw new InvalidOperationException($"The graph '{_graph.Name}' has no parameter source to take '{name}' from.");
        }

        string key = _scope.Count == 0 ? name : $"{ScopePath}.{name}";
        string cacheKey = $"{key}|{(shape is null ? string.Empty : string.Join(',', shape))}|{elementType}";
        if (!_parameters.TryGetValue(cacheKey, out Value? value))
        {
            value = Parameters.Load(this, key, shape, elementType);
            _parameters[cacheKey] = value;
        }

        return value;
    }

    /// <summary>The shape the weight <c>{scope}.{name}</c> is stored with in <see cref="Parameters"/>, or null when there is none.</summary>
    public long[]? StoredShape(string name) => Parameters?.StoredShape(_scope.Count == 0 ? name : $"{ScopePath}.{name}");

    /// <summary>The stored shape of the weight <c>{scope}.{name}</c> (a convolution's kernel size, a projection's width).</summary>
    /// <exception cref="Models.ModelLoadException">The weight is missing.</exception>
    public long[] ParameterShape(string name) =>
        StoredShape(name) ?? throw new Models.ModelLoadException(
            $"The weights of '{_graph.Name}' have no tensor '{(_scope.Count == 0 ? name : $"{ScopePath}.{name}")}', which the model's configuration needs. " +
            "The files may belong to another model, or the configuration to other weights.");

    /// <summary><paramref name="name"/>, or the first of <c>{name}_1</c>, <c>{name}_2</c>, ... that no value of the graph has.</summary>
    public string UniqueName(string name)
    {
        string candidate = name;
        for (int i = 1; _names.Contains(candidate); i++)
        {
            candidate = $"{name}_{i}";
        }

        return candidate;
    }

    /// <summary>Adds an initializer whose bytes stay in <paramref name="location"/> (relative to the model's folder).</summary>
    public Value ExternalInitializer(string name, TensorElementType elementType, ReadOnlySpan<long> dims, string location, long offset, long length)
    {
        Claim(name);
        var tensor = new TensorProto
        {
            Name = name,
            DataType = (int)elementType,
            DataLocation = TensorProto.Types.DataLocation.External,
            ExternalData =
            {
                new StringStringEntryProto { Key = "location", Value = location },
                new StringStringEntryProto { Key = "offset", Value = offset.ToString(CultureInfo.InvariantCulture) },
                new StringStringEntryProto { Key = "length", Value = length.ToString(CultureInfo.InvariantCulture) },
            },
        };
        tensor.Dims.Add(dims.ToArray());
        _graph.Initializer.Add(tensor);
        return new Value(this, name, elementType);
    }

    /// <summary>Adds an initializer with its bytes in the graph (little-endian, as ONNX stores them).</summary>
    public Value Initializer(string name, TensorElementType elementType, ReadOnlySpan<long> dims, ReadOnlySpan<byte> data)
    {
        Claim(name);
        var tensor = new TensorProto { Name = name, DataType = (int)elementType, RawData = ByteString.CopyFrom(data) };
        tensor.Dims.Add(dims.ToArray());
        _graph.Initializer.Add(tensor);
        return new Value(this, name, elementType);
    }

    /// <summary>A float32 initializer.</summary>
    public Value Initializer(string name, ReadOnlySpan<long> dims, ReadOnlySpan<float> values) =>
        Initializer(name, TensorElementType.Float, dims, MemoryMarshal.AsBytes(values));

    /// <summary>An int64 initializer.</summary>
    public Value Initializer(string name, ReadOnlySpan<long> dims, ReadOnlySpan<long> values) =>
        Initializer(name, TensorElementType.Int64, dims, MemoryMarshal.AsBytes(values));

    /// <summary>A scalar constant of the given floating-point type (shared by every node that uses the same one).</summary>
    public Value Scalar(float value, TensorElementType elementType = TensorElementType.Float) => Constant([value], [], elementType);

    /// <summary>A constant tensor of the given floating-point type (shared by every node that uses the same one).</summary>
    public Value Constant(ReadOnlySpan<float> values, ReadOnlySpan<long> dims, TensorElementType elementType = TensorElementType.Float) => elementType switch
    {
        TensorElementType.Float => Constant(elementType, dims, MemoryMarshal.AsBytes(values)),
        TensorElementType.Float16 => Constant(elementType, dims, MemoryMarshal.AsBytes<Half>([.. values.ToArray().Select(v => (Half)v)])),
        TensorElementType.Double => Constant(elementType, dims, MemoryMarshal.AsBytes<double>([.. values.ToArray().Select(v => (double)v)])),
        _ => throw new ArgumentException($"A floating-point constant cannot be {elementType}.", nameof(elementType)),
    };

    /// <summary>A one-dimensional int64 constant (shapes, axes, indices).</summary>
    public Value Int64s(params ReadOnlySpan<long> values) => Constant(TensorElementType.Int64, [values.Length], MemoryMarshal.AsBytes(values));

    /// <summary>A scalar int64 constant.</summary>
    public Value Int64(long value) => Constant(TensorElementType.Int64, [], MemoryMarshal.AsBytes([value]));

    /// <summary>Adds a node with one output of the given element type (the first input's when null).</summary>
    public Value Node(string opType, IReadOnlyList<Value?> inputs, TensorElementType? outputType = null, string domain = "", params ReadOnlySpan<(string Name, object Value)> attributes) =>
        Node(opType, inputs, [outputType ?? FirstType(opType, inputs)], domain, attributes)[0];

    /// <summary>Adds a node with one output per element of <paramref name="outputTypes"/>; a null input is an omitted optional one.</summary>
    public Value[] Node(string opType, IReadOnlyList<Value?> inputs, ReadOnlySpan<TensorElementType> outputTypes, string domain = "", params ReadOnlySpan<(string Name, object Value)> attributes) =>
        AddNode(opType, inputs, outputTypes, [], domain, attributes);

    /// <summary>
    /// <paramref name="input"/> + <paramref name="bias"/> + <paramref name="skip"/>: a residual connection, added as the flavor
    /// adds it (<see cref="Builders.GraphFlavor.AddResidual"/>). Until a node reads the sum, the normalization that comes next
    /// may take it back (<see cref="TakeResidual"/>) and compute it in its own fused operator, as ONNX Runtime's
    /// SkipLayerNormalization and SkipGroupNorm do: one kernel instead of two or three over the whole activation.
    /// </summary>
    /// <param name="input">The branch's output: token sequences [N, L, C] or images in the flavor's layout.</param>
    /// <param name="skip">What the branch adds to: of <paramref name="input"/>'s shape, or per channel over images (a time embedding through <see cref="Builders.GraphFlavor.PerChannel"/>).</param>
    /// <param name="channels">The channels of the sum (C).</param>
    /// <param name="bias">The branch's last bias [C], kept apart for a fused operator to add (a linear layer's, on tokens only); null for none.</param>
    public Value Residual(Value input, Value skip, int channels, Value? bias = null) => AddResidual(input, skip, channels, bias, images: false);

    /// <summary>
    /// <paramref name="input"/> + <paramref name="skip"/> over images of one shape (a resnet's or a transformer's output plus
    /// its input or shortcut), as <see cref="Residual"/> adds it. Where the flavor adds such a sum with a bias in one operator
    /// (<see cref="Builders.GraphFlavor.AddsImageResidualBias"/>), the biases of the convolutions that compute the terms
    /// (<see cref="NodeWithBias"/>) move into it at once, and into the norm that may take the sum later.
    /// </summary>
    /// <param name="input">The branch's output, images in the flavor's layout.</param>
    /// <param name="skip">What the branch adds to, of <paramref name="input"/>'s shape.</param>
    /// <param name="channels">The channels of the sum.</param>
    public Value ImageResidual(Value input, Value skip, int channels) =>
        AddResidual(input, skip, channels, Flavor.AddsImageResidualBias(channels) ? WithDetachedBiases(null, input, skip) : null, images: true);

    /// <summary>
    /// Takes back the residual sum <paramref name="sum"/> made by <see cref="Residual"/> if nothing has read it yet: its nodes
    /// leave the graph, and the caller must compute it again as an output of its fused operator
    /// (<see cref="NodeWithResidual"/>). Null when <paramref name="sum"/> is no such sum, or a node has read it already.
    /// </summary>
    public ResidualSum? TakeResidual(Value sum)
    {
        Own(sum);
        if (!_unreadResiduals.Remove(sum.Name, out ResidualSum? residual))
        {
            return null;
        }

        foreach (NodeProto node in residual.Nodes)
        {
            for (int i = _graph.Node.Count - 1; i >= 0; i--)
            {
                if (ReferenceEquals(_graph.Node[i], node))
                {
                    _graph.Node.RemoveAt(i);
                    break;
                }
            }

            foreach (string input in node.Input)
            {
                Unread(input, shapeOnly: node.OpType == "Shape");
            }

            foreach (string output in node.Output)
            {
                _names.Remove(output);
            }
        }

        // A convolution's bias on either term joins the sum's bias: one less pass over the activation.
        return residual with { Bias = WithDetachedBiases(residual.Bias, residual.Input, residual.Skip) };
    }

    /// <summary>
    /// Adds a node with one output whose last input is a bias over the output's last axis (a convolution's in the NHWC
    /// layout). When the output goes into a residual sum that a fused norm takes (<see cref="TakeResidual"/>) and nothing
    /// else reads it, the bias moves into that operator and this node runs without it.
    /// </summary>
    public Value NodeWithBias(string opType, IReadOnlyList<Value> inputs, string domain, params ReadOnlySpan<(string Name, object Value)> attributes)
    {
        Value output = AddNode(opType, inputs, [FirstType(opType, inputs)], [], domain, attributes)[0];
        _detachableBiases[output.Name] = (_graph.Node[^1], inputs[^1]);
        return output;
    }

    /// <summary>
    /// Adds a fused operator that computes, besides its result (output 0, of the sum's type), the residual sum
    /// <paramref name="residual"/> taken back with <see cref="TakeResidual"/>: as output <paramref name="sumOutput"/>, under the
    /// sum's own name, where the values that read it later find it. Outputs between the two are left out (optional
    /// statistics), and so is the sum when nothing has read it by the time the model is written (the kernel then skips
    /// writing it).
    /// </summary>
    public Value NodeWithResidual(string opType, IReadOnlyList<Value?> inputs, ResidualSum residual, int sumOutput, string domain, params ReadOnlySpan<(string Name, object Value)> attributes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(sumOutput, 1);
        var types = new TensorElementType[sumOutput + 1];
        var names = new string?[sumOutput + 1];
        types.AsSpan().Fill(residual.Input.ElementType);
        names.AsSpan(1, sumOutput - 1).Fill(string.Empty);
        names[sumOutput] = residual.Name;
        _residualOutputs.Add(residual.Name);
        return AddNode(opType, inputs, types, names, domain, attributes)[0];
    }

    /// <summary>The model: this graph with its opset imports.</summary>
    public ModelProto ToModel()
    {
        var model = new ModelProto { IrVersion = IrVersion, ProducerName = "StableDiffusion.Onnx", Graph = _graph.Clone() };
        model.OpsetImport.AddRange(_domains.Select(d => new OperatorSetIdProto { Domain = d.Key, Version = d.Value }));
        foreach (NodeProto node in model.Graph.Node)
        {
            // A fused operator's residual sum that nothing reads: trailing outputs that are left out, no longer computed.
            if (node.Output.Count > 1 && _residualOutputs.Contains(node.Output[^1]) && _readers.GetValueOrDefault(node.Output[^1]) == 0)
            {
                do
                {
                    node.Output.RemoveAt(node.Output.Count - 1);
                }
                while (node.Output[^1].Length == 0);
            }
        }

        return model;
    }

    /// <summary>The serialized model.</summary>
    public byte[] ToBytes() => ToModel().ToByteArray();

    private Value Constant(TensorElementType elementType, ReadOnlySpan<long> dims, ReadOnlySpan<byte> data)
    {
        // Keyed by dims and data: a scalar and a [1] tensor of the same value are different constants.
        ByteString bytes = ByteString.CopyFrom([.. MemoryMarshal.AsBytes(dims), .. data]);
        if (!_constants.TryGetValue((elementType, bytes), out Value? value))
        {
            value = Initializer($"const_{_constants.Count}", elementType, dims, data);
            _constants[(elementType, bytes)] = value;
        }

        return value;
    }

    private Value[] AddNode(string opType, IReadOnlyList<Value?> inputs, ReadOnlySpan<TensorElementType> outputTypes, ReadOnlySpan<string?> outputNames, string domain,
        ReadOnlySpan<(string Name, object Value)> attributes)
    {
        string name = UniqueNodeName(opType);
        var node = new NodeProto { OpType = opType, Name = name, Domain = domain };
        foreach (Value? input in inputs)
        {
            if (input is not null)
            {
                Read(input, shapeOnly: opType == "Shape");
            }

            node.Input.Add(input?.Name ?? string.Empty);
        }

        var outputs = new Value[outputTypes.Length];
        for (int i = 0; i < outputs.Length; i++)
        {
            string output = outputNames.IsEmpty || outputNames[i] is null ? $"{name}_output_{i}" : outputNames[i]!;
            if (output.Length > 0)
            {
                Claim(output);
            }

            node.Output.Add(output);
            outputs[i] = new Value(this, output, outputTypes[i]);
        }

        foreach ((string attributeName, object value) in attributes)
        {
            node.Attribute.Add(Attribute(attributeName, value));
        }

        if (domain.Length > 0)
        {
            _domains.TryAdd(domain, 1);
        }

        _graph.Node.Add(node);
        return outputs;
    }

    private static TensorElementType FirstType(string opType, IReadOnlyList<Value?> inputs) =>
        inputs.FirstOrDefault(i => i is not null)?.ElementType
        ?? throw new ArgumentException($"A {opType} node without inputs needs its output type.", nameof(inputs));

    private string UniqueNodeName(string opType)
    {
        string baseName = $"/{string.Join('/', _scope)}{(_scope.Count > 0 ? "/" : string.Empty)}{opType}";
        int count = _nodeCounts.GetValueOrDefault(baseName);
        _nodeCounts[baseName] = count + 1;
        string name = count == 0 ? baseName : $"{baseName}_{count}";
        while (_names.Contains(name))
        {
            name = $"{baseName}_{++count}";
            _nodeCounts[baseName] = count + 1;
        }

        return name;
    }

    private Value AddResidual(Value input, Value skip, int channels, Value? bias, bool images)
    {
        int first = _graph.Node.Count;
        Value sum = Flavor.AddResidual(this, input, skip, channels, bias, images);
        _unreadResiduals[sum.Name] = new ResidualSum(input, skip, bias, sum.Name, [.. _graph.Node.Skip(first)]);
        return sum;
    }

    // bias plus the biases detached from the terms (DetachBias), summed in float32, which ONNX Runtime folds into a constant
    // on the CPU (it has no float16 Add kernel there); null when there are none.
    private Value? WithDetachedBiases(Value? bias, params ReadOnlySpan<Value> terms)
    {
        foreach (Value term in terms)
        {
            if (DetachBias(term) is { } detached)
            {
                bias = bias is null ? detached : (bias.Cast(TensorElementType.Float) + detached.Cast(TensorElementType.Float)).Cast(detached.ElementType);
            }
        }

        return bias;
    }

    private void Claim(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (!_names.Add(name))
        {
            throw new ArgumentException($"The graph '{_graph.Name}' already has a value named '{name}'.", nameof(name));
        }
    }

    // A node or a graph output reads the value: a residual sum read as it is can no longer be fused into what comes next.
    // A Shape node reads only the shape, which a bias moved elsewhere does not change.
    private void Read(Value value, bool shapeOnly = false)
    {
        Own(value);
        if (!shapeOnly && _readsLeftWithoutBias.TryGetValue(value.Name, out int left))
        {
            // Its bias went into a fused residual: only that operator may read it as it now is.
            _readsLeftWithoutBias[value.Name] = left > 0 ? left - 1
                : throw new InvalidOperationException($"'{value.Name}' lost its bias to a fused residual sum and cannot be read again.");
        }

        _readers[value.Name] = _readers.GetValueOrDefault(value.Name) + 1;
        _unreadResiduals.Remove(value.Name);
    }

    // The removed node that read the value reads it no more; if the value lost its bias, the read the node took is free again.
    private void Unread(string name, bool shapeOnly)
    {
        if (name.Length > 0 && _readers.TryGetValue(name, out int count))
        {
            _readers[name] = count - 1;
            if (!shapeOnly && _readsLeftWithoutBias.TryGetValue(name, out int left))
            {
                _readsLeftWithoutBias[name] = left + 1;
            }
        }
    }

    // The bias of the node that computes term, if that node offered it (NodeWithBias) and nothing reads term any more: the
    // node runs without it, and the caller adds it in the operator that reads term next (its one allowed read).
    private Value? DetachBias(Value term)
    {
        if (_readers.GetValueOrDefault(term.Name) != 0 || !_detachableBiases.Remove(term.Name, out var offer))
        {
            return null;
        }

        offer.Node.Input.RemoveAt(offer.Node.Input.Count - 1);
        _readsLeftWithoutBias[term.Name] = 1;
        return offer.Bias;
    }

    private void Own(Value value)
    {
        if (value.Graph != this)
        {
            throw new ArgumentException($"'{value.Name}' belongs to another graph.", nameof(value));
        }
    }

    private static ValueInfoProto ValueInfo(string name, TensorElementType elementType, ReadOnlySpan<Dim> shape)
    {
        var tensorShape = new TensorShapeProto();
        foreach (Dim dim in shape)
        {
            tensorShape.Dim.Add(dim.ToProto());
        }

        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)elementType, Shape = tensorShape } },
        };
    }

    private static AttributeProto Attribute(string name, object value)
    {
        var attribute = new AttributeProto { Name = name };
        switch (value)
        {
            case int or long:
                attribute.I = Convert.ToInt64(value, CultureInfo.InvariantCulture);
                attribute.Type = AttributeProto.Types.AttributeType.Int;
                break;
            case float or double:
                attribute.F = Convert.ToSingle(value, CultureInfo.InvariantCulture);
                attribute.Type = AttributeProto.Types.AttributeType.Float;
                break;
            case string text:
                attribute.S = ByteString.CopyFromUtf8(text);
                attribute.Type = AttributeProto.Types.AttributeType.String;
                break;
            case long[] ints:
                attribute.Ints.Add(ints);
                attribute.Type = AttributeProto.Types.AttributeType.Ints;
                break;
            case int[] ints:
                attribute.Ints.Add(ints.Select(i => (long)i));
                attribute.Type = AttributeProto.Types.AttributeType.Ints;
                break;
            case float[] floats:
                attribute.Floats.Add(floats);
                attribute.Type = AttributeProto.Types.AttributeType.Floats;
                break;
            case TensorProto tensor:
                attribute.T = tensor;
                attribute.Type = AttributeProto.Types.AttributeType.Tensor;
                break;
            case GraphProto graph:
                attribute.G = graph;
                attribute.Type = AttributeProto.Types.AttributeType.Graph;
                break;
            default:
                throw new ArgumentException($"Attribute '{name}' has a value of type {value?.GetType().Name ?? "null"}, which ONNX attributes cannot hold.", nameof(value));
        }

        return attribute;
    }

    /// <summary>Leaves the scope entered by <see cref="Scope"/>.</summary>
    internal readonly struct ScopeExit(GraphBuilder graph, int depth) : IDisposable
    {
        /// <summary>Leaves the scope (and any scope entered inside it and not left).</summary>
        public void Dispose()
        {
            if (graph._scope.Count >= depth)
            {
                graph._scope.RemoveRange(depth - 1, graph._scope.Count - depth + 1);
            }
        }
    }
}
