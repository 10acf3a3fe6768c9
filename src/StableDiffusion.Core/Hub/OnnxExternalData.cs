using StableDiffusion.Models;
namespace StableDiffusion.Hub;

/// <summary>
/// Lists the external-data files an ONNX model names (<c>TensorProto.external_data["location"]</c>), such as the UNet's
/// <c>weights.pb</c>, so that exactly those files are downloaded next to the graph.
/// </summary>
/// <remarks>
/// A minimal protobuf wire-format walk instead of a protobuf dependency: only the path
/// <c>ModelProto.graph → GraphProto.{initializer, sparse_initializer, node.attribute(t, g, tensors, graphs, sparse_tensor(s))}
/// → TensorProto.{external_data, data_location}</c> is read; every other field, tensor payloads included, is skipped with a
/// seek, so a 500 MB graph with embedded weights costs a few reads.
/// </remarks>
internal static class OnnxExternalData
{
    // Field numbers from onnx.proto3.
    private const int ModelGraph = 7;
    private const int GraphNode = 1;
    private const int GraphInitializer = 5;
    private const int GraphSparseInitializer = 15;
    private const int NodeAttribute = 5;
    private const int AttributeTensor = 5;
    private const int AttributeGraph = 6;
    private const int AttributeTensors = 10;
    private const int AttributeGraphs = 11;
    private const int AttributeSparseTensor = 22;
    private const int AttributeSparseTensors = 23;
    private const int SparseValues = 1;
    private const int SparseIndices = 2;
    private const int TensorExternalData = 13;
    private const int TensorDataLocation = 14;
    private const int EntryKey = 1;
    private const int EntryValue = 2;

    private const int DataLocationExternal = 1;
    private const int MaxGraphDepth = 64;


    /// <summary>Reads the distinct external-data locations of the model in <paramref name="stream"/>, in order of appearance.</summary>
    /// <param name="stream">A readable, seekable stream positioned at the start of an ONNX <c>ModelProto</c>.</param>
    /// <exception cref="InvalidDataException">The bytes are not a well-formed protobuf message.</exception>
    public static IReadOnlyList<string> ReadLocations(Stream stream)
    {
        if (!stream.CanSeek)
        {
            throw new ArgumentException("The ONNX model stream must be seekable.", nameof(stream));
        }

        var reader = new ProtobufReader(stream);
        var locations = new List<string>();
        reader.ForEachField(stream.Length, (field, wireType) =>
        {
            if (field == ModelGraph && wireType == ProtobufReader.LengthDelimited)
            {
                ReadGraph(reader, reader.ReadMessageEnd(), 0, locations);
                return true;
            }

            return false;
        });

        return locations;
    }

    private static void ReadGraph(ProtobufReader reader, long end, int depth, List<string> locations)
    {
        if (depth > MaxGraphDepth)
        {
            throw new InvalidDataException($"ONNX subgraphs are nested more than {MaxGraphDepth} deep.");
        }

        reader.ForEachField(end, (field, wireType) =>
        {
            if (wireType != ProtobufReader.LengthDelimited)
            {
                return false;
            }

            switch (field)
            {
                case GraphInitializer:
                    ReadTensor(reader, reader.ReadMessageEnd(), locations);
                    return true;
                case GraphSparseInitializer:
                    ReadSparseTensor(reader, reader.ReadMessageEnd(), locations);
                    return true;
                case GraphNode:
                    ReadNode(reader, reader.ReadMessageEnd(), depth, locations);
                    return true;
                default:
                    return false;
            }
        });
    }

    private static void ReadNode(ProtobufReader reader, long end, int depth, List<string> locations) =>
        reader.ForEachField(end, (field, wireType) =>
        {
            if (field == NodeAttribute && wireType == ProtobufReader.LengthDelimited)
            {
                ReadAttribute(reader, reader.ReadMessageEnd(), depth, locations);
                return true;
            }

            return false;
        });

    private static void ReadAttribute(ProtobufReader reader, long end, int depth, List<string> locations) =>
        reader.ForEachField(end, (field, wireType) =>
        {
            if (wireType != ProtobufReader.LengthDelimited)
            {
                return false;
            }

            switch (field)
            {
                case AttributeTensor or AttributeTensors:
                    ReadTensor(reader, reader.ReadMessageEnd(), locations);
                    return true;
                case AttributeGraph or AttributeGraphs:
                    ReadGraph(reader, reader.ReadMessageEnd(), depth + 1, locations);
                    return true;
                case AttributeSparseTensor or AttributeSparseTensors:
                    ReadSparseTensor(reader, reader.ReadMessageEnd(), locations);
                    return true;
                default:
                    return false;
            }
        });

    private static void ReadSparseTensor(ProtobufReader reader, long end, List<string> locations) =>
        reader.ForEachField(end, (field, wireType) =>
        {
            if (field is SparseValues or SparseIndices && wireType == ProtobufReader.LengthDelimited)
            {
                ReadTensor(reader, reader.ReadMessageEnd(), locations);
                return true;
            }

            return false;
        });

    private static void ReadTensor(ProtobufReader reader, long end, List<string> locations)
    {
        string? location = null;
        bool external = false;
        reader.ForEachField(end, (field, wireType) =>
        {
            if (field == TensorDataLocation && wireType == ProtobufReader.Varint)
            {
                external = reader.ReadVarint() == DataLocationExternal;
                return true;
            }

            if (field == TensorExternalData && wireType == ProtobufReader.LengthDelimited)
            {
                (string? key, string? value) = ReadEntry(reader, reader.ReadMessageEnd());
                if (key == "location")
                {
                    location = value;
                }

                return true;
            }

            return false;
        });

        if (external)
        {
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

    private static (string? Key, string? Value) ReadEntry(ProtobufReader reader, long end)
    {
        string? key = null;
        string? value = null;
        reader.ForEachField(end, (field, wireType) =>
        {
            if (wireType != ProtobufReader.LengthDelimited || field is not (EntryKey or EntryValue))
            {
                return false;
            }

            string text = reader.ReadString();
            if (field == EntryKey)
            {
                key = text;
            }
            else
            {
                value = text;
            }

            return true;
        });

        return (key, value);
    }
}
