using Microsoft.ML.OnnxRuntime;

namespace StableDiffusion.Models;

/// <summary>
/// The inputs a UNet graph declares, by name: the three the pipeline fills (<c>sample</c>, <c>timestep</c>,
/// <c>encoder_hidden_states</c>) and the others, which <see cref="IUNetInputContributor"/>s write; which contributor writes
/// which, and each input's shape for a call. What "inputs by name" means, in one place, for the bindings and the request checks.
/// </summary>
internal sealed class UNetSignature
{
    public const string SampleName = "sample";
    public const string TimestepName = "timestep";
    public const string HiddenStatesName = "encoder_hidden_states";
    private readonly IReadOnlyDictionary<string, NodeMetadata> _metadata;
    private readonly string _modelPath;

    /// <param name="session">The UNet's session, whose inputs were checked.</param>
    /// <param name="modelPath">The graph's path, for errors.</param>
    public UNetSignature(InferenceSession session, string modelPath)
    {
        _metadata = session.InputMetadata;
        _modelPath = modelPath;
        Names = session.InputNames;
        ExtraNames = [.. Names.Where(name => name is not (SampleName or TimestepName or HiddenStatesName))];
    }

    /// <summary>Every input, in the graph's order (the order bindings pass them in).</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>The inputs beyond the three the pipeline fills, which contributors write.</summary>
    public IReadOnlyList<string> ExtraNames { get; }

    /// <summary>The graph's element type of an input.</summary>
    public TensorElementType ElementType(string name) => _metadata[name].ElementDataType;

    /// <summary>
    /// The contributors as an array, after checking that they write exactly <see cref="ExtraNames"/>, each once: a missing
    /// input fails here, by name, rather than deep inside ONNX Runtime or silently as zeros.
    /// </summary>
    /// <param name="contributors">The contributors given.</param>
    /// <param name="argumentName">The argument they came in, for errors.</param>
    public IUNetInputContributor[] RequireContributors(IReadOnlyList<IUNetInputContributor> contributors, string argumentName)
    {
        ArgumentNullException.ThrowIfNull(contributors, argumentName);
        var writers = new Dictionary<string, IUNetInputContributor>(StringComparer.Ordinal);
        foreach (IUNetInputContributor contributor in contributors)
        {
            if (contributor is null)
            {
                throw new ArgumentException("The UNet input contributors contain null.", argumentName);
            }

            foreach (string name in contributor.InputNames)
            {
                if (name is SampleName or TimestepName or HiddenStatesName)
                {
                    throw new ArgumentException(
                        $"{contributor.GetType().Name} writes the UNet input '{name}', which the pipeline fills itself; contributors write the UNet's other inputs ({Quoted(ExtraNames, "this UNet has none")}).",
                        argumentName);
                }

                if (!ExtraNames.Contains(name))
                {
                    throw new ArgumentException(
                        $"{contributor.GetType().Name} writes the UNet input '{name}', which the UNet '{_modelPath}' does not take (its inputs: {Quoted(Names, "none")}).", argumentName);
                }

                if (!writers.TryAdd(name, contributor))
                {
                    throw new ArgumentException($"Both {writers[name].GetType().Name} and {contributor.GetType().Name} write the UNet input '{name}'; give it one contributor.", argumentName);
                }
            }
        }

        foreach (string name in ExtraNames)
        {
            if (!writers.ContainsKey(name))
            {
                throw new ArgumentException(
                    $"The UNet '{_modelPath}' takes an input '{name}' ({OnnxModel.Describe(_metadata[name])}) that nothing supplies. " +
                    $"Add an {nameof(IUNetInputContributor)} that writes it to the request's UNetInputs (diffusers passes such inputs to the UNet as keyword arguments).",
                    argumentName);
            }
        }

        return [.. contributors];
    }

    /// <summary>
    /// Each input's shape, in the graph's order: the sample's and the prompt embeddings' as given; the others a contributor's
    /// <see cref="IUNetInputContributor.ShapeOf"/>, else the graph's: fixed dimensions as they are, a symbolic one named like
    /// one of the sample's or the embeddings' of that size, a first one the batch.
    /// </summary>
    public long[][] Shapes(long[] sampleShape, long[] hiddenShape, IUNetInputContributor[] contributors)
    {
        var known = new Dictionary<string, long>(StringComparer.Ordinal);
        AddSymbols(_metadata[SampleName], sampleShape, known);
        AddSymbols(_metadata[HiddenStatesName], hiddenShape, known);
        var shapes = new long[Names.Count][];
        for (int i = 0; i < Names.Count; i++)
        {
            string name = Names[i];
            shapes[i] = name switch
            {
                SampleName => sampleShape,
                HiddenStatesName => hiddenShape,
                _ => contributors.FirstOrDefault(c => c.InputNames.Contains(name))?.ShapeOf(name, sampleShape) is { } given
                    ? Checked(name, given)
                    : FromGraph(name, sampleShape[0], known),
            };
        }

        return shapes;
    }

    private static void AddSymbols(NodeMetadata node, long[] shape, Dictionary<string, long> known)
    {
        for (int d = 0; d < node.Dimensions.Length && d < shape.Length; d++)
        {
            if (node.Dimensions[d] <= 0 && node.SymbolicDimensions.ElementAtOrDefault(d) is { Length: > 0 } symbol)
            {
                known.TryAdd(symbol, shape[d]);
            }
        }
    }

    private long[] FromGraph(string name, long batch, Dictionary<string, long> known)
    {
        NodeMetadata node = _metadata[name];
        var shape = new long[node.Dimensions.Length];
        for (int d = 0; d < shape.Length; d++)
        {
            string? symbol = node.SymbolicDimensions.ElementAtOrDefault(d);
            shape[d] = node.Dimensions[d] > 0 ? node.Dimensions[d]
                : symbol is { Length: > 0 } && known.TryGetValue(symbol, out long size) ? size
                : d == 0 ? batch
                : throw new ArgumentException(
                    $"The UNet input '{name}' ({OnnxModel.Describe(node)}) has a dimension {d} ('{symbol}') that neither the graph nor the sample fixes: return its shape from the contributor's " +
                    $"{nameof(IUNetInputContributor.ShapeOf)}, or fix the dimension with SessionSettings.FreeDimensionOverrides.");
        }

        return shape;
    }

    private long[] Checked(string name, long[] given)
    {
        NodeMetadata node = _metadata[name];
        bool fits = given.Length == node.Dimensions.Length && given.Select((size, d) => size > 0 && (node.Dimensions[d] <= 0 || node.Dimensions[d] == size)).All(ok => ok);
        return fits
            ? [.. given]
            : throw new ArgumentException($"A contributor gives the UNet input '{name}' the shape [{string.Join(", ", given)}], which does not fit the graph's {OnnxModel.Describe(node)}.");
    }

    private static string Quoted(IReadOnlyList<string> names, string none) => names.Count == 0 ? none : string.Join(", ", names.Select(n => $"'{n}'"));
}
