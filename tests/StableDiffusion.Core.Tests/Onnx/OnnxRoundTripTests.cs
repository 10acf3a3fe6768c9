using Google.Protobuf;
using StableDiffusion.Core.Tests.Onnx.Support;
using StableDiffusion.Onnx;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.Onnx;

/// <summary>The generated ONNX messages read and write real exports without losing anything, even fields they do not declare.</summary>
[Trait("Area", "WeightsLoading")]
public sealed class OnnxRoundTripTests
{
    public static TheoryData<string> FixtureGraphs => new(
        from model in new[] { "tiny-sd-onnx", "tiny-sd-onnx-variants", "tiny-sd-inpaint-onnx" }
        from component in new[] { "text_encoder", "unet", "vae_encoder", "vae_decoder", "safety_checker" }
        select $"{model}/{component}/model.onnx");

    [Theory]
    [MemberData(nameof(FixtureGraphs))]
    public void ParseThenSerialize_KeepsEveryField(string graph)
    {
        Fixtures.Require();
        byte[] original = File.ReadAllBytes(Fixtures.PathOf(graph));

        ModelProto model = ModelProto.Parser.ParseFrom(original);
        byte[] written = model.ToByteArray();

        // Undeclared fields are written after the declared ones, so the bytes may be reordered, never lost.
        Assert.Equal(original.Length, written.Length);
        Assert.Equal(model, ModelProto.Parser.ParseFrom(written));
        Assert.NotEmpty(model.Graph.Node);
    }

    [Fact]
    public void ARewrittenDecoder_RunsLikeTheOriginal()
    {
        Fixtures.Require();
        byte[] original = File.ReadAllBytes(Fixtures.PathOf("tiny-sd-onnx/vae_decoder/model.onnx"));
        byte[] written = ModelProto.Parser.ParseFrom(original).ToByteArray();
        float[] latents = GraphRunner.Random(4 * 8 * 8, seed: 1);

        (float[] expected, _) = GraphRunner.Run(original, null, ("latent_sample", latents, [1, 4, 8, 8]));
        (float[] actual, _) = GraphRunner.Run(written, null, ("latent_sample", latents, [1, 4, 8, 8]));

        Assert.Equal(expected, actual);
    }

    [Fact]
    public void Outline_OfAGraphWithExternalWeights_HasItsNodesAndLocations()
    {
        Fixtures.Require();

        ModelOutline outline = OnnxOutline.Read(Fixtures.PathOf("tiny-sd-onnx-variants/unet/model.onnx"));

        Assert.Equal(ModelProto.Parser.ParseFrom(File.ReadAllBytes(Fixtures.PathOf("tiny-sd-onnx-variants/unet/model.onnx"))).Graph.Node.Count, outline.Graph.Node.Count);
        Assert.Equal(["model.onnx.data"], OnnxExternalData.ReadLocations(Fixtures.PathOf("tiny-sd-onnx-variants/unet/model.onnx")));
    }

    [Fact]
    public void RetypeIntegerInputToFloat_OfAnExportWithAnInt64Timestep_ChangesOneByte()
    {
        Fixtures.Require();
        string path = Fixtures.PathOf("tiny-sd-onnx-variants/unet/model.onnx");
        byte[] original = File.ReadAllBytes(path);

        byte[] retyped = OnnxGraphSurgery.RetypeIntegerInputToFloat(path, "timestep")!;

        Assert.Equal(original.Length, retyped.Length);
        Assert.Single(Enumerable.Range(0, original.Length), i => original[i] != retyped[i]);
        ValueInfoProto timestep = ModelProto.Parser.ParseFrom(retyped).Graph.Input.Single(i => i.Name == "timestep");
        Assert.Equal((int)Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, timestep.Type.TensorType.ElemType);
        Assert.Null(OnnxGraphSurgery.RetypeIntegerInputToFloat(Fixtures.PathOf("tiny-sd-onnx/unet/model.onnx"), "timestep"));
    }
}
