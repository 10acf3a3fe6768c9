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

    [Fact]
    public void ResolveLinks_WithoutLinks_ReturnsTheGraphAndFolderAsGiven()
    {
        string folder = Directory.CreateTempSubdirectory("sd-links-").FullName;
        try
        {
            File.WriteAllBytes(Path.Combine(folder, "weights.pb"), [1, 2, 3]);
            byte[] model = OnnxBytes.ModelWithExternalData("weights.pb");

            (byte[] resolved, string resolvedFolder) = OnnxExternalData.ResolveLinks(model, folder);

            Assert.Same(model, resolved);
            Assert.Equal(folder, resolvedFolder);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void ResolveLinks_OfHubCacheLinks_NamesEachBlobFromTheBlobsFolder_AndChangesNoFile()
    {
        // snapshots/rev/unet/{weights.pb, branch.bin} link to blobs/, as a Hugging Face cache has them; const.bin is a real file.
        string root = Directory.CreateTempSubdirectory("sd-links-").FullName;
        try
        {
            string blobs = Directory.CreateDirectory(Path.Combine(root, "blobs")).FullName;
            string unet = Directory.CreateDirectory(Path.Combine(root, "snapshots", "rev", "unet")).FullName;
            foreach ((string name, string blob) in new[] { ("weights.pb", "1a2b"), ("branch.bin", "3c4d") })
            {
                File.WriteAllBytes(Path.Combine(blobs, blob), [1, 2, 3]);
                File.CreateSymbolicLink(Path.Combine(unet, name), Path.Combine("..", "..", "..", "blobs", blob));
            }

            var subgraph = OnnxBytes.Graph([OnnxBytes.ExternalTensor("inner", "branch.bin")], []);
            byte[] model = OnnxBytes.Model(OnnxBytes.Graph([OnnxBytes.ExternalTensor("w", "weights.pb")], [OnnxBytes.Node("If", subgraph: subgraph)]));

            (byte[] resolved, string folder) = OnnxExternalData.ResolveLinks(model, unet);

            Assert.Equal(blobs, folder);
            Assert.Equal(["1a2b", "3c4d"], Read(resolved).Order());
            Assert.Equal(["branch.bin", "weights.pb"], Read(model).Order());
            Assert.Equal(Path.Combine("..", "..", "..", "blobs", "1a2b"), new FileInfo(Path.Combine(unet, "weights.pb")).LinkTarget);

            // Everything but the locations comes through, fields the outline does not declare included.
            ModelProto expected = ModelProto.Parser.ParseFrom(model);
            expected.Graph.Initializer[0].ExternalData[0].Value = "1a2b";
            expected.Graph.Node[0].Attribute[0].G.Initializer[0].ExternalData[0].Value = "3c4d";
            Assert.Equal(expected, ModelProto.Parser.ParseFrom(resolved));
            Assert.Equal("metadata after the graph", ModelProto.Parser.ParseFrom(resolved).MetadataProps.Single().Value);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static IReadOnlyList<string> Read(byte[] bytes) => OnnxExternalData.ReadLocations(bytes);
}
