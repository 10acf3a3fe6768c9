using Google.Protobuf;

namespace StableDiffusion.Onnx;

/// <summary>
/// Lists the external-data files an ONNX model names (<c>TensorProto.external_data["location"]</c>), such as the UNet's
/// <c>weights.pb</c>, so that exactly those files are downloaded next to the graph.
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

    // The model with each external-data location renamed through relocate.
    private static byte[] Relocate(byte[] model, Func<string, string> relocate)
    {
        ModelProto proto;
        try
        {
            proto = ModelProto.Parser.ParseFrom(model);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new InvalidDataException("The bytes are not a well-formed ONNX model.", ex);
        }

        if (proto.Graph is not null)
        {
            RelocateGraph(proto.Graph, relocate);
        }

        return proto.ToByteArray();
    }

    // The same tensors as AddGraph visits, on the full model.
    private static void RelocateGraph(GraphProto graph, Func<string, string> relocate)
    {
        foreach (AttributeProto attribute in graph.Node.SelectMany(node => node.Attribute))
        {
            RelocateTensor(attribute.T, relocate);
            if (attribute.G is not null)
            {
                RelocateGraph(attribute.G, relocate);
            }

            foreach (TensorProto tensor in attribute.Tensors)
            {
                RelocateTensor(tensor, relocate);
            }

            foreach (GraphProto subgraph in attribute.Graphs)
            {
                RelocateGraph(subgraph, relocate);
            }

            foreach (SparseTensorProto sparse in attribute.SparseTensors.Append(attribute.SparseTensor))
            {
                RelocateTensor(sparse?.Values, relocate);
                RelocateTensor(sparse?.Indices, relocate);
            }
        }

        foreach (TensorProto tensor in graph.Initializer)
        {
            RelocateTensor(tensor, relocate);
        }

        foreach (SparseTensorProto sparse in graph.SparseInitializer)
        {
            RelocateTensor(sparse.Values, relocate);
            RelocateTensor(sparse.Indices, relocate);
        }
    }

    private static void RelocateTensor(TensorProto? tensor, Func<string, string> relocate)
    {
        if (tensor is not { DataLocation: TensorProto.Types.DataLocation.External })
        {
            return;
        }

        foreach (StringStringEntryProto entry in tensor.ExternalData.Where(entry => entry.Key == LocationKey))
        {
            entry.Value = relocate(entry.Value);
        }
    }

    private static List<string> Locations(ModelOutline model)
    {
        var locations = new List<string>();
        if (model.Graph is not null)
        {
            AddGraph(model.Graph, locations);
        }

        return locations;
    }

    // In the order the fields appear in a file written in field-number order, as exporters write them.
    private static void AddGraph(GraphOutline graph, List<string> locations)
    {
        foreach (AttributeOutline attribute in graph.Node.SelectMany(node => node.Attribute))
        {
            AddTensor(attribute.T, locations);
            if (attribute.G is not null)
            {
                AddGraph(attribute.G, locations);
            }

            foreach (TensorOutline tensor in attribute.Tensors)
            {
                AddTensor(tensor, locations);
            }

            foreach (GraphOutline subgraph in attribute.Graphs)
            {
                AddGraph(subgraph, locations);
            }

            AddSparseTensor(attribute.SparseTensor, locations);
            foreach (SparseTensorOutline sparse in attribute.SparseTensors)
            {
                AddSparseTensor(sparse, locations);
            }
        }

        foreach (TensorOutline tensor in graph.Initializer)
        {
            AddTensor(tensor, locations);
        }

        foreach (SparseTensorOutline sparse in graph.SparseInitializer)
        {
            AddSparseTensor(sparse, locations);
        }
    }

    private static void AddSparseTensor(SparseTensorOutline? sparse, List<string> locations)
    {
        AddTensor(sparse?.Values, locations);
        AddTensor(sparse?.Indices, locations);
    }

    private static void AddTensor(TensorOutline? tensor, List<string> locations)
    {
        if (tensor is not { DataLocation: TensorProto.Types.DataLocation.External })
        {
            return;
        }

        string? location = tensor.ExternalData.LastOrDefault(entry => entry.Key == LocationKey)?.Value;
        if (string.IsNullOrEmpty(location))
        {
            throw new InvalidDataException("An ONNX tensor stored as external data names no 'location'.");
        }

        if (!locations.Contains(location))
        {
            locations.Add(location);
        }
    }
}
