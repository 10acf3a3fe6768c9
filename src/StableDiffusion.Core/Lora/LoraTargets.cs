using System.Globalization;
using Google.Protobuf;
using StableDiffusion.Models;
using StableDiffusion.Onnx;
using StableDiffusion.Weights;

namespace StableDiffusion.Lora;

/// <summary>
/// The layers of one ONNX graph (an export or a graph built from diffusers weights or a single file) that a LoRA can
/// change, by diffusers module path, and the merging of updates into their base weights.
/// </summary>
/// <remarks>
/// Built graphs name each weight initializer by its diffusers key (<c>…to_q.weight</c>), stored [out, in] as PyTorch does.
/// Exporters keep those names for convolutions and Gemm, but store Linear layers as MatMul weights named
/// <c>onnx::MatMul_NNN</c>, transposed to [in, out]: the module is then the path of the node using it
/// (<c>/down_blocks.0/attentions.0/transformer_blocks.0/attn1/to_q/MatMul</c>). Text encoder paths are taken without
/// <c>text_model.</c>, as LoRA files name them with or without it. The graph itself is not held: each call that reads
/// weights is given it again (an export's file may hold its weights).
/// </remarks>
internal sealed class LoraTargets
{
    private const string WeightSuffix = ".weight";
    private readonly Dictionary<string, string> _byFlatName;

    private LoraTargets(string component, Dictionary<string, LoraTarget> modules)
    {
        Component = component;
        Modules = modules;
        _byFlatName = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string module in modules.Keys)
        {
            _byFlatName.TryAdd(module.Replace('.', '_'), module);
        }
    }

    /// <summary>The component, such as <c>unet</c>.</summary>
    public string Component { get; }

    /// <summary>The changeable layers by module path.</summary>
    public IReadOnlyDictionary<string, LoraTarget> Modules { get; }

    /// <summary>The layer a LoRA entry names (kohya's underscore names are looked up among the module paths), or null.</summary>
    public LoraTarget? Find(LoraEntry entry) =>
        entry.IsFlat
            ? _byFlatName.TryGetValue(entry.Name, out string? module) ? Modules[module] : null
            : Modules.GetValueOrDefault(entry.Name);

    /// <summary>Lists the changeable layers of <paramref name="source"/>, the component's base graph.</summary>
    /// <exception cref="InvalidDataException">The graph is not a well-formed ONNX model.</exception>
    public static LoraTargets Read(string component, BuiltGraph source)
    {
        GraphProto graph = Parse(source).Graph ?? throw new InvalidDataException($"The {component} graph '{source.Path}' has no graph.");
        var initializers = new Dictionary<string, TensorProto>(StringComparer.Ordinal);
        foreach (TensorProto tensor in graph.Initializer)
        {
            initializers[tensor.Name] = tensor;
        }

        // Exporters alias deduplicated weights through Identity nodes; a use of the alias is a use of the weight.
        var aliases = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (NodeProto node in graph.Node)
        {
            if (node.OpType == "Identity" && node.Input.Count == 1 && node.Output.Count == 1 && initializers.ContainsKey(node.Input[0]))
            {
                aliases[node.Output[0]] = node.Input[0];
            }
        }

        var modulesOf = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        var transposed = new HashSet<string>(StringComparer.Ordinal);
        foreach (NodeProto node in graph.Node)
        {
            if (node.OpType is not ("MatMul" or "Gemm" or "Conv" or "FusedMatMul") || node.Input.Count < 2)
            {
                continue;
            }

            string input = node.Input[1];
            string weight = aliases.GetValueOrDefault(input, input);
            if (!initializers.ContainsKey(weight))
            {
                continue;
            }

            if (node.OpType == "MatMul" || (node.OpType is "Gemm" or "FusedMatMul" && IntAttribute(node, "transB") == 0))
            {
                transposed.Add(weight);
            }

            if (ModuleFromNodeName(node.Name) is { } module)
            {
                (modulesOf.TryGetValue(weight, out HashSet<string>? set) ? set : modulesOf[weight] = []).Add(Normalize(component, module));
            }
        }

        var modules = new Dictionary<string, LoraTarget>(StringComparer.Ordinal);
        // Built graphs: a weight named by its key, and every other initializer viewing the same stored bytes.
        foreach (IGrouping<string, TensorProto> stored in initializers.Values.Where(IsWeightCandidate).GroupBy(StorageKey, StringComparer.Ordinal))
        {
            TensorProto? named = stored.FirstOrDefault(t => t.Name.EndsWith(WeightSuffix, StringComparison.Ordinal));
            if (named is null)
            {
                continue;
            }

            string module = Normalize(component, named.Name[..^WeightSuffix.Length]);
            string? shared = modulesOf.GetValueOrDefault(named.Name)?.FirstOrDefault(m => m != module);
            modules[module] = Target(module, [.. stored.Select(t => t.Name)], named, transposed.Contains(named.Name), shared);
        }

        // Exports: MatMul weights named by the exporter, found through the node that uses them.
        foreach ((string weight, HashSet<string> users) in modulesOf)
        {
            if (weight.EndsWith(WeightSuffix, StringComparison.Ordinal) || !IsWeightCandidate(initializers[weight]))
            {
                continue;
            }

            foreach (string module in users)
            {
                string? shared = users.FirstOrDefault(m => m != module);
                modules.TryAdd(module, Target(module, [weight], initializers[weight], transposed.Contains(weight), shared));
            }
        }

        return new LoraTargets(component, modules);
    }

    /// <summary>Reads the base values of <paramref name="target"/> in <paramref name="source"/> (parsed as <paramref name="model"/>
    /// when given) as single precision, in its stored element order.</summary>
    public static float[] ReadBase(BuiltGraph source, LoraTarget target, ModelProto? model = null)
    {
        model ??= Parse(source);
        TensorProto tensor = model.Graph.Initializer.First(t => t.Name == target.Initializers[0]);
        byte[] bytes;
        if (tensor.DataLocation == TensorProto.Types.DataLocation.External)
        {
            string location = External(tensor, "location") ?? throw new InvalidDataException($"Initializer '{tensor.Name}' of '{source.Path}' names no external data location.");
            long offset = long.Parse(External(tensor, "offset") ?? "0", CultureInfo.InvariantCulture);
            long length = long.Parse(External(tensor, "length") ?? "-1", CultureInfo.InvariantCulture);
            string path = Path.GetFullPath(Path.Combine(source.ExternalDataFolder, location));
            if (!path.StartsWith(Path.GetFullPath(source.ExternalDataFolder), StringComparison.Ordinal))
            {
                throw new InvalidDataException($"Initializer '{tensor.Name}' of '{source.Path}' points outside the model's folder ('{location}').");
            }

            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            long size = length >= 0 ? length : target.ElementCount * ElementSizes.Of(target.ElementType);
            bytes = new byte[checked((int)size)];
            stream.Position = offset;
            stream.ReadExactly(bytes);
        }
        else if (tensor.FloatData.Count > 0)
        {
            return [.. tensor.FloatData];
        }
        else
        {
            bytes = tensor.RawData.ToByteArray();
        }

        if (bytes.Length != target.ElementCount * ElementSizes.Of(target.ElementType))
        {
            throw new InvalidDataException($"Initializer '{tensor.Name}' of '{source.Path}' has {bytes.Length} bytes for {target.ElementCount} elements of {target.ElementType}.");
        }

        var values = new float[target.ElementCount];
        TorchCheckpointTensor.ToSingle(target.ElementType, bytes, values);
        return values;
    }

    /// <summary>
    /// <paramref name="source"/> (the base graph these targets were read from) with every weight that
    /// <paramref name="contributions"/> change merged (base + Σ factor · update, in single precision, then cast to the
    /// weight's type) and stored inside it; <paramref name="source"/> itself when nothing changes, so the base weights come
    /// back exactly.
    /// </summary>
    /// <exception cref="InvalidOperationException">The merged graph would exceed the 2 GiB an ONNX graph can hold.</exception>
    public BuiltGraph MergedGraph(BuiltGraph source, IReadOnlyList<LoraContribution> contributions)
    {
        var updates = new Dictionary<LoraTarget, List<(LoraEntry Entry, float Factor)>>();
        foreach (LoraContribution contribution in contributions)
        {
            foreach ((LoraEntry entry, LoraTarget target) in contribution.Adapter.Layers.Where(l => l.Entry.Component == Component))
            {
                (updates.TryGetValue(target, out var list) ? list : updates[target] = []).Add((entry, contribution.Factor));
            }
        }

        if (updates.Count == 0)
        {
            return source;
        }

        ModelProto model = Parse(source);
        foreach ((LoraTarget target, List<(LoraEntry Entry, float Factor)> layerUpdates) in updates)
        {
            float[] weight = ReadBase(source, target, model);
            foreach ((LoraEntry entry, float factor) in layerUpdates)
            {
                LoraMerge.Add(weight, target, entry, factor);
            }

            SetValues(model, target, FloatConversion.FromSingle(weight, target.ElementType));
        }

        long size = model.CalculateSize();
        if (size > int.MaxValue)
        {
            throw new InvalidOperationException(
                $"The {Component} graph with {updates.Count} merged LoRA weights would take {size >> 20} MiB, more than an ONNX graph can hold in memory (2 GiB). " +
                "Use a float16 model, or fewer adapters at once.");
        }

        return source with { Model = model.ToByteArray() };
    }

    /// <summary>
    /// Puts <paramref name="values"/> (the weight's elements in its stored type) into every initializer of
    /// <paramref name="target"/> in <paramref name="model"/>, inside the graph: ONNX Runtime's .NET API has no way to replace
    /// an initializer before constant folding (<c>AddInitializer</c> values are ignored where a weight is folded), so
    /// merged weights travel in an in-memory copy of the graph, and the files stay untouched.
    /// </summary>
    private static void SetValues(ModelProto model, LoraTarget target, byte[] values)
    {
        ByteString data = UnsafeByteOperations.UnsafeWrap(values);
        foreach (TensorProto tensor in model.Graph.Initializer.Where(t => target.Initializers.Contains(t.Name)))
        {
            tensor.RawData = data;
            tensor.FloatData.Clear();
            tensor.ExternalData.Clear();
            tensor.DataLocation = TensorProto.Types.DataLocation.Default;
        }
    }

    /// <summary>Parses the whole model, weights included.</summary>
    private static ModelProto Parse(BuiltGraph source) => OnnxOutline.ReadModel(source.Model);

    private static LoraTarget Target(string module, string[] names, TensorProto tensor, bool transposed, string? shared) =>
        new(module, names, (TensorElementType)tensor.DataType, [.. tensor.Dims], transposed, shared);

    /// <summary>A floating-point initializer of rank 2 or more: the weights of linear and convolution layers.</summary>
    private static bool IsWeightCandidate(TensorProto tensor) =>
        tensor.Dims.Count >= 2 && FloatConversion.IsSupported((TensorElementType)tensor.DataType);

    /// <summary>Initializers that are views of the same stored bytes share a key; any other initializer is its own.</summary>
    private static string StorageKey(TensorProto tensor) => tensor.DataLocation == TensorProto.Types.DataLocation.External
        ? $"{External(tensor, "location")}|{External(tensor, "offset")}|{External(tensor, "length")}"
        : "inline|" + tensor.Name;

    private static string? External(TensorProto tensor, string key) => tensor.ExternalData.LastOrDefault(e => e.Key == key)?.Value;

    private static long IntAttribute(NodeProto node, string name) =>
        node.Attribute.FirstOrDefault(a => a.Name == name)?.I ?? 0;

    /// <summary><c>/down_blocks.0/attentions.0/proj_in/Conv</c> → <c>down_blocks.0.attentions.0.proj_in</c>; null for names without a path.</summary>
    private static string? ModuleFromNodeName(string name)
    {
        if (string.IsNullOrEmpty(name) || name[0] != '/')
        {
            return null;
        }

        string[] parts = name[1..].Split('/');
        return parts.Length < 2 ? null : string.Join('.', parts[..^1]);
    }

    /// <summary>Text encoder paths without <c>text_model.</c>, as LoRA files name them either way.</summary>
    private static string Normalize(string component, string module) =>
        component == Models.ModelComponents.TextEncoder && module.StartsWith("text_model.", StringComparison.Ordinal) ? module["text_model.".Length..] : module;
}
