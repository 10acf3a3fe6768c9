using System.Text;

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
    private const int MaxStringBytes = 64 * 1024;

    private const int WireVarint = 0;
    private const int WireFixed64 = 1;
    private const int WireLengthDelimited = 2;
    private const int WireFixed32 = 5;

    /// <summary>Reads the distinct external-data locations of the model in <paramref name="stream"/>, in order of appearance.</summary>
    /// <param name="stream">A readable, seekable stream positioned at the start of an ONNX <c>ModelProto</c>.</param>
    /// <exception cref="InvalidDataException">The bytes are not a well-formed protobuf message.</exception>
    public static IReadOnlyList<string> ReadLocations(Stream stream)
    {
        if (!stream.CanSeek)
        {
            throw new ArgumentException("The ONNX model stream must be seekable.", nameof(stream));
        }

        var reader = new Reader(stream);
        var locations = new List<string>();
        reader.ForEachField(stream.Length, (field, wireType) =>
        {
            if (field == ModelGraph && wireType == WireLengthDelimited)
            {
                ReadGraph(reader, reader.ReadMessageEnd(), 0, locations);
                return true;
            }

            return false;
        });

        return locations;
    }

    private static void ReadGraph(Reader reader, long end, int depth, List<string> locations)
    {
        if (depth > MaxGraphDepth)
        {
            throw new InvalidDataException($"ONNX subgraphs are nested more than {MaxGraphDepth} deep.");
        }

        reader.ForEachField(end, (field, wireType) =>
        {
            if (wireType != WireLengthDelimited)
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

    private static void ReadNode(Reader reader, long end, int depth, List<string> locations) =>
        reader.ForEachField(end, (field, wireType) =>
        {
            if (field == NodeAttribute && wireType == WireLengthDelimited)
            {
                ReadAttribute(reader, reader.ReadMessageEnd(), depth, locations);
                return true;
            }

            return false;
        });

    private static void ReadAttribute(Reader reader, long end, int depth, List<string> locations) =>
        reader.ForEachField(end, (field, wireType) =>
        {
            if (wireType != WireLengthDelimited)
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

    private static void ReadSparseTensor(Reader reader, long end, List<string> locations) =>
        reader.ForEachField(end, (field, wireType) =>
        {
            if (field is SparseValues or SparseIndices && wireType == WireLengthDelimited)
            {
                ReadTensor(reader, reader.ReadMessageEnd(), locations);
                return true;
            }

            return false;
        });

    private static void ReadTensor(Reader reader, long end, List<string> locations)
    {
        string? location = null;
        bool external = false;
        reader.ForEachField(end, (field, wireType) =>
        {
            if (field == TensorDataLocation && wireType == WireVarint)
            {
                external = reader.ReadVarint() == DataLocationExternal;
                return true;
            }

            if (field == TensorExternalData && wireType == WireLengthDelimited)
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

    private static (string? Key, string? Value) ReadEntry(Reader reader, long end)
    {
        string? key = null;
        string? value = null;
        reader.ForEachField(end, (field, wireType) =>
        {
            if (wireType != WireLengthDelimited || field is not (EntryKey or EntryValue))
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

    /// <summary>Protobuf wire-format primitives over a seekable stream, bounded by the enclosing message's end.</summary>
    private sealed class Reader(Stream stream)
    {
        /// <summary>
        /// Visits each field until <paramref name="end"/>; <paramref name="visit"/> consumes the field's value and returns
        /// <see langword="true"/>, or returns <see langword="false"/> to have it skipped.
        /// </summary>
        public void ForEachField(long end, Func<int, int, bool> visit)
        {
            while (stream.Position < end)
            {
                ulong tag = ReadVarint();
                int field = checked((int)(tag >> 3));
                int wireType = (int)(tag & 7);
                if (field == 0)
                {
                    throw Malformed("field number 0");
                }

                if (!visit(field, wireType))
                {
                    Skip(wireType, end);
                }

                if (stream.Position > end)
                {
                    throw Malformed("a field runs past the end of its message");
                }
            }
        }

        /// <summary>Reads a length prefix and returns where that embedded message ends.</summary>
        public long ReadMessageEnd()
        {
            ulong length = ReadVarint();
            long end = stream.Position + (long)Math.Min(length, long.MaxValue / 2);
            if (end > stream.Length)
            {
                throw Malformed("a message runs past the end of the file");
            }

            return end;
        }

        public string ReadString()
        {
            long end = ReadMessageEnd();
            long length = end - stream.Position;
            if (length > MaxStringBytes)
            {
                throw Malformed($"a string of {length} bytes");
            }

            byte[] bytes = new byte[length];
            stream.ReadExactly(bytes);
            return Encoding.UTF8.GetString(bytes);
        }

        public ulong ReadVarint()
        {
            ulong result = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                int b = stream.ReadByte();
                if (b < 0)
                {
                    throw Malformed("the file ends inside a number");
                }

                result |= (ulong)(b & 0x7F) << shift;
                if ((b & 0x80) == 0)
                {
                    return result;
                }
            }

            throw Malformed("a number longer than 10 bytes");
        }

        private void Skip(int wireType, long end)
        {
            long next = wireType switch
            {
                WireVarint => -1,
                WireFixed64 => stream.Position + 8,
                WireLengthDelimited => ReadMessageEnd(),
                WireFixed32 => stream.Position + 4,
                _ => throw Malformed($"unsupported wire type {wireType}"),
            };

            if (wireType == WireVarint)
            {
                ReadVarint();
                return;
            }

            if (next > end)
            {
                throw Malformed("a field runs past the end of its message");
            }

            stream.Position = next;
        }

        private static InvalidDataException Malformed(string what) =>
            new($"The file is not a valid ONNX model: {what}.");
    }
}
