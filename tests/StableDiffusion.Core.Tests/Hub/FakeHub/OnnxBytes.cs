using Google.Protobuf;
using StableDiffusion.Onnx;

namespace StableDiffusion.Core.Tests.Hub.FakeHub;

/// <summary>Builds small ONNX models with embedded and external tensors, as the Hub's file selection sees them.</summary>
public static class OnnxBytes
{
    private const int Float = 1;

    /// <summary>A model whose graph has one tensor per location (external data) plus an embedded tensor and a node.</summary>
    public static byte[] ModelWithExternalData(params string[] locations) =>
        Model(Graph([.. locations.Select((l, i) => ExternalTensor($"w{i}", l)), EmbeddedTensor("bias", 4096)], [Node("MatMul")]));

    /// <summary>A model with every weight embedded (like the text encoder).</summary>
    public static byte[] ModelWithEmbeddedWeights() => Model(Graph([EmbeddedTensor("weight", 70_000), EmbeddedTensor("bias", 300)], [Node("Add")]));

    internal static byte[] Model(GraphProto graph) => new ModelProto
    {
        IrVersion = 8,
        ProducerName = "fake-exporter",
        OpsetImport = { new OperatorSetIdProto { Domain = string.Empty, Version = 17 } },
        Graph = graph,
        // A field after the graph must be skipped too.
        MetadataProps = { new StringStringEntryProto { Key = "note", Value = "metadata after the graph" } },
    }.ToByteArray();

    internal static GraphProto Graph(TensorProto[] initializers, NodeProto[] nodes) =>
        new() { Name = "main_graph", Node = { nodes }, Initializer = { initializers } };

    internal static NodeProto Node(string opType, GraphProto? subgraph = null, TensorProto? tensorAttribute = null)
    {
        var node = new NodeProto { OpType = opType, Input = { "x" }, Output = { "y" } };
        if (subgraph is not null)
        {
            node.Attribute.Add(new AttributeProto { Name = "then_branch", G = subgraph, Type = AttributeProto.Types.AttributeType.Graph });
        }

        if (tensorAttribute is not null)
        {
            node.Attribute.Add(new AttributeProto { Name = "value", T = tensorAttribute, Type = AttributeProto.Types.AttributeType.Tensor });
        }

        return node;
    }

    internal static TensorProto ExternalTensor(string name, string location) => new()
    {
        Dims = { 64, 64 },
        DataType = Float,
        Name = name,
        ExternalData =
        {
            new StringStringEntryProto { Key = "location", Value = location },
            new StringStringEntryProto { Key = "offset", Value = "0" },
            new StringStringEntryProto { Key = "length", Value = "16384" },
        },
        DataLocation = TensorProto.Types.DataLocation.External,
    };

    /// <summary>A tensor with its bytes in the graph, followed by another payload field that must be skipped as well.</summary>
    internal static TensorProto EmbeddedTensor(string name, int rawBytes) =>
        new() { Dims = { rawBytes / 4 }, DataType = Float, Name = name, RawData = ByteString.CopyFrom(new byte[rawBytes]), FloatData = { 0f } };

    /// <summary>A tensor naming a location but stored inline (data_location DEFAULT): its location must be ignored.</summary>
    internal static TensorProto InlineTensorWithStaleLocation(string name, string location) =>
        new() { Name = name, ExternalData = { new StringStringEntryProto { Key = "location", Value = location } }, DataLocation = TensorProto.Types.DataLocation.Default };
}
