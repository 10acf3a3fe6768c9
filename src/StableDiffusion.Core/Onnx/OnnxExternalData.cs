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
