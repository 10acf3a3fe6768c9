using StableDiffusion.Core.Tests.Hub.FakeHub;
using StableDiffusion.Onnx;
using Xunit;

namespace StableDiffusion.Core.Tests.Onnx;

[Trait("Area", "Hub")]
public sealed class OnnxExternalDataTests
{
    [Fact]
    public void ReadLocations_ListsEachExternalFileOnce_InOrder()
    {
        byte[] model = OnnxBytes.Model(OnnxBytes.Graph(
            [OnnxBytes.ExternalTensor("a", "weights.pb"), OnnxBytes.EmbeddedTensor("b", 1000), OnnxBytes.ExternalTensor("c", "weights.pb"), OnnxBytes.ExternalTensor("d", "extra.bin")],
            [OnnxBytes.Node("Conv")]));

        Assert.Equal(["weights.pb", "extra.bin"], Read(model));
    }

    [Fact]
    public void ReadLocations_WithEmbeddedWeightsOnly_ReturnsNothing() => Assert.Empty(Read(OnnxBytes.ModelWithEmbeddedWeights()));

    [Fact]
    public void ReadLocations_FindsTensorsInSubgraphsAndAttributes()
    {
        var subgraph = OnnxBytes.Graph([OnnxBytes.ExternalTensor("inner", "branch.bin")], []);
        byte[] model = OnnxBytes.Model(OnnxBytes.Graph(
            [],
            [OnnxBytes.Node("If", subgraph: subgraph), OnnxBytes.Node("Constant", tensorAttribute: OnnxBytes.ExternalTensor("const", "const.bin"))]));

        Assert.Equal(["branch.bin", "const.bin"], Read(model));
    }

    [Fact]
    public void ReadLocations_IgnoresLocationsOfInlineTensors() =>
        Assert.Empty(Read(OnnxBytes.Model(OnnxBytes.Graph([OnnxBytes.InlineTensorWithStaleLocation("t", "stale.bin")], []))));

    [Fact]
    public void ReadLocations_OfATruncatedFile_ThrowsInvalidData()
    {
        byte[] model = OnnxBytes.ModelWithExternalData("weights.pb");

        Assert.Throws<InvalidDataException>(() => Read(model[..(model.Length / 2)]));
    }

    [Fact]
    public void ReadLocations_OfNonProtobufBytes_ThrowsInvalidData() =>
        Assert.Throws<InvalidDataException>(() => Read("{\"not\": \"onnx\"}"u8.ToArray()));

    private static IReadOnlyList<string> Read(byte[] bytes) => OnnxExternalData.ReadLocations(bytes);
}
