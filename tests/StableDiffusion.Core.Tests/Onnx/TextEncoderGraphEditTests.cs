using Microsoft.ML.OnnxRuntime;
using StableDiffusion.Core.Tests.Onnx.Support;
using StableDiffusion.ExecutionProviders;
using StableDiffusion.Models;
using StableDiffusion.Onnx;
using StableDiffusion.Onnx.Builders;
using StableDiffusion.Testing;
using StableDiffusion.Weights;
using Xunit;

namespace StableDiffusion.Core.Tests.Onnx;

/// <summary>
/// The text encoder edits for clip skip and textual inversion on diffusers' exports (int32 ids, opset 14's decomposed
/// layer norms) and the variants' (int64 ids): the added outputs are the built graph's <c>clip_skip_n</c>, which
/// ClipTextModelTests checks against the export's own hidden states, and added tokens embed as their vectors.
/// </summary>
[Trait("Area", "PromptWeighting")]
public sealed class TextEncoderGraphEditTests
{
    private static readonly int[] Ids = [49406, 320, 736, 11353, 49407, 49407, 49407, 49407, 49406, 1929, 49407, 49407, 49407, 49407, 49407, 49407];

    public static TheoryData<string> Exports => ["tiny-sd-onnx", "tiny-sd-onnx-variants"];

    [Theory]
    [MemberData(nameof(Exports))]
    public void ClipSkipOutputs_OfAnExport_AreTheBuiltGraphs(string model)
    {
        Fixtures.Require();
        using TextEncoderModel edited = TextEncoderModel.Load(Fixtures.PathOf($"{model}/text_encoder/model.onnx"), new SessionSettings(), null, clipSkips: true, addedTokens: null);
        using SafetensorsFile weights = SafetensorsFile.Open(Fixtures.PathOf("tiny-sd/text_encoder/model.safetensors"));
        var parameters = new SafetensorsParameters([weights]);
        var graph = new GraphBuilder(parameters: parameters);
        ClipTextModel.FromConfig(ComponentConfig.Load(Fixtures.PathOf("tiny-sd/text_encoder/config.json"))).Build(graph, new ClipTextOptions { ClipSkips = [1, 2] });
        using InferenceSession built = GraphRunner.Session(graph.ToBytes(), parameters.Folder);

        SessionRun expected = SessionRun.Of(built, [SessionRun.Input(ClipTextModel.InputIdsName, Ids, [2, 8])],
            ClipTextModel.LastHiddenStateName, ClipTextModel.ClipSkipOutputName(1), ClipTextModel.ClipSkipOutputName(2));

        Assert.Equal(2, edited.MaxClipSkip);
        ArrayAssert.Close(expected[ClipTextModel.LastHiddenStateName], edited.Encode(Ids, 2).AsSpan().ToArray(), 1e-5, "last hidden state");
        for (int clipSkip = 1; clipSkip <= 2; clipSkip++)
        {
            ArrayAssert.Close(expected[ClipTextModel.ClipSkipOutputName(clipSkip)], edited.Encode(Ids, 2, clipSkip: clipSkip).AsSpan().ToArray(), 1e-5, $"clip skip {clipSkip}");
        }
    }

    [Theory]
    [MemberData(nameof(Exports))]
    public void AddedTokens_EmbedAsTheirVectors(string model)
    {
        Fixtures.Require();
        string path = Fixtures.PathOf($"{model}/text_encoder/model.onnx");
        using SafetensorsFile weights = SafetensorsFile.Open(Fixtures.PathOf("tiny-sd/text_encoder/model.safetensors"));
        ReadOnlySpan<float> table = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(weights.GetBytes(weights.Find("text_model.embeddings.token_embedding.weight")!));
        // Rows 49408 and 49409: the vectors of 'dog' and 'red'.
        float[] added = [.. table.Slice(1929 * 32, 32), .. table.Slice(736 * 32, 32)];
        using TextEncoderModel plain = TextEncoderModel.Load(path);
        using TextEncoderModel edited = TextEncoderModel.Load(path, new SessionSettings(), null, clipSkips: true, new AddedTokenEmbeddings(49408, added));

        int[] withAdded = [.. Ids];
        withAdded[2] = 49409;
        withAdded[9] = 49408;

        Assert.Equal(plain.Encode(Ids, 2).AsSpan().ToArray(), edited.Encode(withAdded, 2).AsSpan().ToArray());
        Assert.Equal(2, edited.MaxClipSkip);
    }

    [Fact]
    public void AGraphWithoutCLIPsLayers_IsRefusedForClipSkip()
    {
        Fixtures.Require();
        string path = Fixtures.PathOf("tiny-sd-onnx/vae_decoder/model.onnx");

        var ex = Assert.Throws<ModelLoadException>(() => TextEncoderModel.Load(path, new SessionSettings(), null, clipSkips: true, addedTokens: null));

        Assert.Contains("cannot be edited for clip skip or textual inversion", ex.Message, StringComparison.Ordinal);
    }
}
