using Google.Protobuf;

namespace StableDiffusion.Onnx;

/// <summary>
/// Lists the external-data files an ONNX model names (<c>TensorProto.external_data["location"]</c>), such as the UNet's
/// <c>weights.pb</c>, so that exactly those files are downloaded next to the graph; and renames them to the files links
/// lead to, for a graph loaded from memory (<see cref="ResolveLinks"/>).
/// </summary>
/// <remarks>
/// Tensors are looked for wherever ONNX allows them: the initializers and sparse initializers of the main graph, and the
/// tensor, sparse-tensor and subgraph attributes of its nodes, recursively. The outline skips the weights themselves, so a
/// graph with 1 GB of embedded weights costs a few reads.
/// </remarks>
internal static class OnnxExternalData
{
    private const string LocationKey = "location";

    /// <summary>Reads the distinct external-data locations of the model in <paramref name="path"/>, in order of appearance.</summary>
    /// <exception cref="InvalidDataException">The file is not a well-formed ONNX model, or an external tensor names no location.</exception>
    public static IReadOnlyList<string> ReadLocations(string path) => Locations(OnnxOutline.Read(path));

    /// <summary>Reads the distinct external-data locations of the model in <paramref name="model"/>, in order of appearance.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a well-formed ONNX model, or an external tensor names no location.</exception>
    public static IReadOnlyList<string> ReadLocations(ReadOnlySpan<byte> model) => Locations(OnnxOutline.Read(model));

    /// <summary>
    /// <paramref name="model"/>, whose external data are relative to <paramref name="folder"/>, made loadable from memory
    /// where some of those files are symbolic links: ONNX Runtime refuses external data that resolves outside the folder it
    /// is given, as the links of a Hugging Face cache snapshot to its <c>blobs/</c> do. Every location is then renamed to
    /// its final target, relative to the nearest folder that holds them all (a snapshot's <c>blobs/</c>), which becomes the
    /// folder. Only the graph in memory changes, never a file; a graph without links comes back as it is.
    /// </summary>
    /// <exception cref="InvalidDataException">The bytes are not a well-formed ONNX model, or an external tensor names no location.</exception>
    public static (byte[] Model, string Folder) ResolveLinks(byte[] model, string folder)
    {
        IReadOnlyList<string> locations = ReadLocations(model);
        Dictionary<string, string> targets = locations.ToDictionary(
            location => location,
            location => new FileInfo(Path.Combine(folder, location)) is { Exists: true } file
                ? file.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? file.FullName
                : Path.GetFullPath(Path.Combine(folder, location)));
        if (locations.All(location => targets[location] == Path.GetFullPath(Path.Combine(folder, location))))
        {
            return (model, folder);
        }

        // No common folder (links to other drives): ONNX Runtime's refusal then names the file.
        return targets.Values.Select(Path.GetDirectoryName).Aggregate(CommonFolder) is string common
            ? (Relocate(model, location => Path.GetRelativePath(common, targets[location])), common)
            : (model, folder);
    }

    // The deepest folder holding both a and b.
    private static string? CommonFolder(string? a, string? b)
    {
        while (a is not null && b is not null && a != b)
        {
            if (a.Length >= b.Length)
            {
                a = Path.GetDirectoryName(a);
            }
            else
            {
                b = Path.GetDirectoryName(b);
            }
        }

        return a == b ? a : null;
    }

    // The model with each external-data location renamed through relocate: read whole (the fields the outline does not
    // declare kept as unknown fields), renamed through the same walk as ReadLocations, and written back.
    private static byte[] Relocate(byte[] model, Func<string, string> relocate)
    {
        ModelOutline whole = OnnxOutline.ReadWhole(model);
        foreach (TensorOutline tensor in ExternalTensors(whole))
        {
            StringStringEntryProto entry = Location(tensor);
            entry.Value = relocate(entry.Value);
        }

        return whole.ToByteArray();
    }

    private static List<string> Locations(ModelOutline model) =>
        [.. ExternalTensors(model).Select(tensor => Location(tensor).Value).Distinct(StringComparer.Ordinal)];

    private static IEnumerable<TensorOutline> ExternalTensors(ModelOutline model) =>
        model.Graph is null ? [] : Tensors(model.Graph).Where(tensor => tensor.DataLocation == TensorProto.Types.DataLocation.External);

    // Every tensor of the graph, in the order the fields appear in a file written in field-number order, as exporters write them.
    private static IEnumerable<TensorOutline> Tensors(GraphOutline graph)
    {
        foreach (AttributeOutline attribute in graph.Node.SelectMany(node => node.Attribute))
        {
            TensorOutline?[] tensors =
            [
                attribute.T,
                .. attribute.G is null ? [] : Tensors(attribute.G),
                .. attribute.Tensors,
                .. attribute.Graphs.SelectMany(Tensors),
                .. SparseTensors([attribute.SparseTensor, .. attribute.SparseTensors]),
            ];
            foreach (TensorOutline tensor in tensors.OfType<TensorOutline>())
            {
                yield return tensor;
            }
        }

        foreach (TensorOutline tensor in graph.Initializer.Concat(SparseTensors(graph.SparseInitializer)))
        {
            yield return tensor;
        }
    }

    private static IEnumerable<TensorOutline> SparseTensors(IEnumerable<SparseTensorOutline?> sparse) =>
        sparse.SelectMany(s => new[] { s?.Values, s?.Indices }).OfType<TensorOutline>();

    // The entry naming an external tensor's file (the last, as protobuf's last value wins).
    private static StringStringEntryProto Location(TensorOutline tensor) =>
        tensor.ExternalData.LastOrDefault(entry => entry.Key == LocationKey) is { Value.Length: > 0 } entry
            ? entry
            : throw new InvalidDataException("An ONNX tensor stored as external data names no 'location'.");
}
