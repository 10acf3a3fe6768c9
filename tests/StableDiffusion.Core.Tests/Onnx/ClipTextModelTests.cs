using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using StableDiffusion.Core.Tests.Onnx.Support;
using StableDiffusion.Models;
using StableDiffusion.Onnx;
using StableDiffusion.Onnx.Builders;
using StableDiffusion.Testing;
using StableDiffusion.Tokenization;
using StableDiffusion.Weights;
using Xunit;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace StableDiffusion.Core.Tests.Onnx;

/// <summary>
/// The text encoder built from tiny-sd's diffusers folder (config.json, and model.safetensors read in place) against
/// diffusers' ONNX export of the same weights.
/// </summary>
[Trait("Area", "WeightsLoading")]
public sealed class ClipTextModelTests : IDisposable
{
    private const int Eos = 49407;

    private readonly string _folder = Directory.CreateTempSubdirectory("sd-clip-text-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static string TextEncoder => Fixtures.PathOf("tiny-sd/text_encoder");

    private static string ExportPath => Fixtures.PathOf("tiny-sd-onnx/text_encoder/model.onnx");

    /// <summary>Id batches: the reference's tokenized prompts, random ids with the end token at chosen places (or nowhere), a short sequence.</summary>
    public static TheoryData<string> Batches => ["prompts", "random", "no-eos", "short"];

    [Theory]
    [MemberData(nameof(Batches))]
    public void Build_GivesTheOutputsOfTheOnnxExport(string batch)
    {
        Fixtures.Require();
        (int[] ids, long[] shape) = Ids(batch);
        using SafetensorsFile weights = SafetensorsFile.Open(Path.Combine(TextEncoder, "model.safetensors"));
        using InferenceSession built = Session(weights);
        using var export = new InferenceSession(ExportPath);

        SessionRun actual = Run(built, ids, shape);
        SessionRun expected = Run(export, ids, shape);

        Assert.Equal([.. shape, 32], actual.Shape(ClipTextModel.LastHiddenStateName));
        Assert.Equal([shape[0], 32], actual.Shape(ClipTextModel.PoolerOutputName));
        ArrayAssert.Close(expected[ClipTextModel.LastHiddenStateName], actual[ClipTextModel.LastHiddenStateName], 1e-5, $"{batch}: last_hidden_state");
        ArrayAssert.Close(expected[ClipTextModel.PoolerOutputName], actual[ClipTextModel.PoolerOutputName], 1e-5, $"{batch}: pooler_output");
    }

    public static IEnumerable<TheoryDataRow<string>> PipelineCases() => Reference.CaseNames("pipeline");

    [Theory]
    [Trait("Category", "Parity")]
    [MemberData(nameof(PipelineCases))]
    public void Build_GivesTheEmbeddingsDiffusersPipelineMadeOfThePrompts(string id)
    {
        (ReferenceSet set, JsonElement c) = Reference.Case("pipeline", id);
        // The PyTorch model diffusers ran: the section's torch_model, or (published reference) tiny-sd, the export's weights.
        string model = set.ResolvePath(set.Root.GetProperty("pipeline").TryGetProperty("torch_model", out JsonElement torch) ? torch.GetString()! : "../tiny-sd");
        ClipTokenizer tokenizer = ClipTokenizer.FromFolder(Path.Combine(model, "tokenizer"));
        using SafetensorsFile weights = SafetensorsFile.Open(Path.Combine(model, "text_encoder", "model.safetensors"));
        using InferenceSession session = Session(weights, configPath: Path.Combine(model, "text_encoder", "config.json"));
        IReadOnlyList<string> prompts = Pipelines.ReferenceCases.Prompts(c);
        int perPrompt = c.GetProperty("num_images_per_prompt").GetInt32();
        string arrays = $"pipe/{c.GetProperty("name").GetString()}";

        AssertEmbeddings(prompts, "prompt_embeds");
        if (c.GetProperty("guidance").GetSingle() > 1)
        {
            // diffusers' negative_prompt: none (the empty prompt), one string for every prompt, or one per prompt.
            IReadOnlyList<string> negatives = !c.TryGetProperty("negative_prompt", out JsonElement negative) || negative.ValueKind == JsonValueKind.Null
                ? [.. prompts.Select(_ => string.Empty)]
                : negative.ValueKind == JsonValueKind.Array ? [.. negative.EnumerateArray().Select(n => n.GetString()!)] : [.. prompts.Select(_ => negative.GetString()!)];
            AssertEmbeddings(negatives, "negative_prompt_embeds");
        }

        void AssertEmbeddings(IReadOnlyList<string> texts, string array)
        {
            int[] ids = [.. texts.SelectMany(t => tokenizer.Encode(t).InputIds.ToArray())];
            float[] actual = Run(session, ids, [texts.Count, ids.Length / texts.Count])[ClipTextModel.LastHiddenStateName];
            float[] expected = set.Array($"{arrays}/{array}").ToSingle();
            int length = actual.Length / texts.Count;
            Assert.Equal(actual.Length * perPrompt, expected.Length);
            for (int i = 0; i < texts.Count; i++)
            {
                // diffusers repeats each prompt's embeddings num_images_per_prompt times.
                ArrayAssert.Close(expected.AsSpan(i * perPrompt * length, length), actual.AsSpan(i * length, length), 1e-5, $"{id}: {array}[{i}]");
            }
        }
    }

    [Fact]
    public void Build_KeepsEveryWeightInTheSafetensorsFile()
    {
        Fixtures.Require();
        using SafetensorsFile weights = SafetensorsFile.Open(Path.Combine(TextEncoder, "model.safetensors"));
        var graph = new GraphBuilder(parameters: new SafetensorsParameters([weights]));
        ClipTextModel.FromConfig(ComponentConfig.Load(Path.Combine(TextEncoder, "config.json"))).Build(graph);

        GraphAssert.KeepsEveryWeightInItsFile(graph.ToModel(), weights);
    }

    [Fact]
    public void Build_FromWeightsWithoutTheTextModelPrefix_GivesTheSameOutputs()
    {
        Fixtures.Require();
        (int[] ids, long[] shape) = Ids("random");
        using SafetensorsFile prefixed = SafetensorsFile.Open(Path.Combine(TextEncoder, "model.safetensors"));
        using SafetensorsFile flat = SafetensorsFile.Open(WeightFiles.Rewrite(prefixed, Path.Combine(_folder, "model.safetensors"), n => WeightFiles.WithoutPrefix(n, "text_model.")));
        Assert.DoesNotContain(flat.Tensors, t => t.Name.StartsWith("text_model.", StringComparison.Ordinal));
        using InferenceSession fromPrefixed = Session(prefixed);
        using InferenceSession fromFlat = Session(flat);

        SessionRun expected = Run(fromPrefixed, ids, shape);
        SessionRun actual = Run(fromFlat, ids, shape);

        Assert.Equal(expected[ClipTextModel.LastHiddenStateName], actual[ClipTextModel.LastHiddenStateName]);
        Assert.Equal(expected[ClipTextModel.PoolerOutputName], actual[ClipTextModel.PoolerOutputName]);
    }

    [Fact]
    public void ClipSkips_AreTheEarlierHiddenStatesOfTheExportThroughTheFinalLayerNorm()
    {
        Fixtures.Require();
        (int[] ids, long[] shape) = Ids("prompts");
        using SafetensorsFile weights = SafetensorsFile.Open(Path.Combine(TextEncoder, "model.safetensors"));
        using InferenceSession built = Session(weights, new ClipTextOptions { ClipSkips = [1, 2] });
        // The export's hidden_states[-2] (the first layer's output; the tiny encoder has two) and hidden_states[-3] (the embeddings).
        string[] exportStates = ["/encoder/layers.0/Add_1_output_0", "/embeddings/Add_output_0"];
        using var export = new InferenceSession(OnnxGraphSurgery.AddGraphOutputs(File.ReadAllBytes(ExportPath), exportStates));

        SessionRun actual = Run(built, ids, shape, ClipTextModel.LastHiddenStateName, ClipTextModel.ClipSkipOutputName(1), ClipTextModel.ClipSkipOutputName(2));
        SessionRun expected = Run(export, ids, shape, exportStates);

        float[] scale = Floats(weights, "text_model.final_layer_norm.weight"), offset = Floats(weights, "text_model.final_layer_norm.bias");
        for (int clipSkip = 1; clipSkip <= 2; clipSkip++)
        {
            float[] normalized = LayerNorm(expected[exportStates[clipSkip - 1]], scale, offset, 1e-5);
            ArrayAssert.Close(normalized, actual[ClipTextModel.ClipSkipOutputName(clipSkip)], 1e-5, $"clip_skip {clipSkip}");
        }

        Assert.NotEqual(actual[ClipTextModel.LastHiddenStateName], actual[ClipTextModel.ClipSkipOutputName(1)]);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    public void ClipSkips_OutsideTheLayers_AreRefused(int clipSkip)
    {
        Fixtures.Require();
        using SafetensorsFile weights = SafetensorsFile.Open(Path.Combine(TextEncoder, "model.safetensors"));
        var graph = new GraphBuilder(parameters: new SafetensorsParameters([weights]));
        ClipTextModel model = ClipTextModel.FromConfig(ComponentConfig.Load(Path.Combine(TextEncoder, "config.json")));

        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => model.Build(graph, new ClipTextOptions { ClipSkips = [1, clipSkip] }));

        Assert.Equal("clipSkips", ex.ParamName);
        Assert.Equal(clipSkip, ex.ActualValue);
    }

    [Theory]
    [InlineData(Eos)]
    [InlineData(2)]
    public void PoolerOutput_IsAtTheFirstEndToken_OrForLegacyConfigurationsAtTheLargestId(int eosTokenId)
    {
        Fixtures.Require();
        // Row 0 ends properly; row 1 has neither start nor end token, and its largest id (900) at 2; row 2 has two end tokens.
        int[] ids = [49406, 5, 6, Eos, Eos, Eos, 7, 8, 900, 9, 10, 11, 49406, Eos, 11, Eos, 12, 13];
        long[] shape = [3, 6];
        string config = WriteConfig(c => c["eos_token_id"] = eosTokenId);
        using SafetensorsFile weights = SafetensorsFile.Open(Path.Combine(TextEncoder, "model.safetensors"));
        using InferenceSession session = Session(weights, configPath: config);

        SessionRun run = Run(session, ids, shape);

        int[] expectedPositions = eosTokenId == 2 ? [3, 2, 1] : [3, 0, 1];
        float[] last = run[ClipTextModel.LastHiddenStateName];
        float[] pooled = run[ClipTextModel.PoolerOutputName];
        for (int row = 0; row < 3; row++)
        {
            Assert.Equal(last.AsSpan(((row * 6) + expectedPositions[row]) * 32, 32).ToArray(), pooled.AsSpan(row * 32, 32).ToArray());
        }
    }

    [Fact]
    public void Build_FromAFloat16File_ComputesInFloat32AsFromTheSameWeightsInFloat32()
    {
        Fixtures.Require();
        (int[] ids, long[] shape) = Ids("prompts");
        using SafetensorsFile source = SafetensorsFile.Open(Path.Combine(TextEncoder, "model.safetensors"));
        using SafetensorsFile half = SafetensorsFile.Open(WeightFiles.Rewrite(source, Path.Combine(_folder, "model.fp16.safetensors"), n => n, "F16"));
        Directory.CreateDirectory(Path.Combine(_folder, "rounded"));
        using SafetensorsFile rounded = SafetensorsFile.Open(WeightFiles.Rewrite(half, Path.Combine(_folder, "rounded", "model.safetensors"), n => n));
        using InferenceSession fromHalf = Session(half);
        using InferenceSession fromRounded = Session(rounded);
        using var export = new InferenceSession(ExportPath);

        SessionRun actual = Run(fromHalf, ids, shape);
        SessionRun expected = Run(fromRounded, ids, shape);
        SessionRun exported = Run(export, ids, shape);

        Assert.Equal(TensorElementType.Float, fromHalf.OutputMetadata[ClipTextModel.LastHiddenStateName].ElementDataType);
        ArrayAssert.Close(expected[ClipTextModel.LastHiddenStateName], actual[ClipTextModel.LastHiddenStateName], 1e-6, "last_hidden_state, float16 file vs its float32 copy");
        ArrayAssert.Close(expected[ClipTextModel.PoolerOutputName], actual[ClipTextModel.PoolerOutputName], 1e-6, "pooler_output, float16 file vs its float32 copy");
        // Against the export of the unrounded weights, the rounding to float16 (about 5e-4 relative) is all that differs.
        ArrayAssert.Close(exported[ClipTextModel.LastHiddenStateName], actual[ClipTextModel.LastHiddenStateName], 1e-2, "last_hidden_state, float16 file vs the export");
    }

    [Fact]
    public void Build_ComputingInFloat16_GivesFloat16OutputsNearTheExport()
    {
        Fixtures.Require();
        (int[] ids, long[] shape) = Ids("prompts");
        using SafetensorsFile weights = SafetensorsFile.Open(Path.Combine(TextEncoder, "model.safetensors"));
        using InferenceSession built = Session(weights, computeType: TensorElementType.Float16);
        using var export = new InferenceSession(ExportPath);

        SessionRun actual = Run(built, ids, shape);
        SessionRun expected = Run(export, ids, shape);

        Assert.Equal(TensorElementType.Float16, built.OutputMetadata[ClipTextModel.LastHiddenStateName].ElementDataType);
        Assert.Equal(TensorElementType.Float16, built.OutputMetadata[ClipTextModel.PoolerOutputName].ElementDataType);
        ArrayAssert.Close(expected[ClipTextModel.LastHiddenStateName], actual[ClipTextModel.LastHiddenStateName], 2e-2, "last_hidden_state in float16");
        ArrayAssert.Close(expected[ClipTextModel.PoolerOutputName], actual[ClipTextModel.PoolerOutputName], 2e-2, "pooler_output in float16");
    }

    [Theory]
    [InlineData("hidden_act", "\"relu\"", "\"hidden_act\": \"relu\", which this SDK cannot build; it supports one of \"quick_gelu\", \"gelu\", \"gelu_new\", \"gelu_pytorch_tanh\".")]
    [InlineData("num_attention_heads", "5", "hidden_size 32, which num_attention_heads 5 does not divide")]
    [InlineData("hidden_size", "64", "(vocab_size 49408, hidden_size 64) makes 'text_model.embeddings.token_embedding.weight' [49408, 64], but the weights store it as [49408, 32]")]
    [InlineData("max_position_embeddings", "78", "(max_position_embeddings 78, hidden_size 32) makes 'text_model.embeddings.position_embedding.weight' [78, 32], but the weights store it as [77, 32]")]
    [InlineData("intermediate_size", "48", "(intermediate_size 48, hidden_size 32) makes 'text_model.encoder.layers.0.mlp.fc1.weight' [48, 32], but the weights store it as [64, 32]")]
    [InlineData("num_hidden_layers", "1", "num_hidden_layers 1, but the weights have a layer 'text_model.encoder.layers.1' beyond them")]
    public void Build_WithAConfigurationItCannotBuildOverTheseWeights_ThrowsNamingTheField(string field, string value, string expected)
    {
        Fixtures.Require();
        string config = WriteConfig(c => c[field] = System.Text.Json.Nodes.JsonNode.Parse(value));
        using SafetensorsFile weights = SafetensorsFile.Open(Path.Combine(TextEncoder, "model.safetensors"));

        var ex = Assert.Throws<ModelLoadException>(() =>
            ClipTextModel.FromConfig(ComponentConfig.Load(config)).Build(new GraphBuilder(parameters: new SafetensorsParameters([weights]))));

        Assert.Contains($"The configuration '{config}'", ex.Message, StringComparison.Ordinal);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.Equal(config, ex.Path);
    }

    [Fact]
    public void Build_OverWeightsMissingATensor_ThrowsNamingIt()
    {
        Fixtures.Require();
        using SafetensorsFile source = SafetensorsFile.Open(Path.Combine(TextEncoder, "model.safetensors"));
        using SafetensorsFile weights = SafetensorsFile.Open(WeightFiles.Rewrite(source, Path.Combine(_folder, "model.safetensors"), n => n.Contains("layers.1.mlp.fc2.bias", StringComparison.Ordinal) ? null : n));

        var ex = Assert.Throws<ModelLoadException>(() =>
            ClipTextModel.FromConfig(ComponentConfig.Load(Path.Combine(TextEncoder, "config.json"))).Build(new GraphBuilder(parameters: new SafetensorsParameters([weights]))));

        Assert.Contains("have no tensor 'text_model.encoder.layers.1.mlp.fc2.bias'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Build_OverAWeightOfTheRightSizeButAnotherShape_ThrowsNamingIt()
    {
        Fixtures.Require();
        using SafetensorsFile source = SafetensorsFile.Open(Path.Combine(TextEncoder, "model.safetensors"));
        string path = Path.Combine(_folder, "model.safetensors");
        // fc2's weight stored transposed ([64, 32] where the model needs [32, 64]): same elements, wrong matrix.
        Weights.SafetensorsWriter.Write(path, source.Tensors.Select(t => Weights.SafetensorsWriter.Tensor.Float32(
            t.Name, t.Name.EndsWith("layers.1.mlp.fc2.weight", StringComparison.Ordinal) ? [t.Shape[1], t.Shape[0]] : t.Shape, Floats(source, t.Name))));
        using SafetensorsFile weights = SafetensorsFile.Open(path);

        var ex = Assert.Throws<ModelLoadException>(() =>
            ClipTextModel.FromConfig(ComponentConfig.Load(Path.Combine(TextEncoder, "config.json"))).Build(new GraphBuilder(parameters: new SafetensorsParameters([weights]))));

        Assert.Equal($"Tensor 'text_model.encoder.layers.1.mlp.fc2.weight' of '{path}' is F32[64, 32]; the model needs [32, 64] (2048 elements). The weights do not belong to this model's configuration.", ex.Message);
    }

    private static (int[] Ids, long[] Shape) Ids(string batch)
    {
        switch (batch)
        {
            case "prompts":
                Reference.Published.Require();
                int[][] padded = [.. Reference.Published.Root.GetProperty("tokenizer").GetProperty("cases").EnumerateArray().Take(3)
                    .Select(c => c.GetProperty("padded").EnumerateArray().Select(v => v.GetInt32()).ToArray())];
                return ([.. padded.SelectMany(p => p)], [padded.Length, 77]);
            case "random":
            case "no-eos":
                var random = new Random(batch.Length);
                int[] ids = [.. Enumerable.Range(0, 4 * 77).Select(_ => random.Next(1, Eos))];
                for (int row = 0; row < 4; row++)
                {
                    ids[row * 77] = 49406;
                    if (batch == "random")
                    {
                        // The end token at 1, 20, 76 and 40 (and later again, as padding repeats it).
                        int end = new[] { 1, 20, 76, 40 }[row];
                        ids.AsSpan((row * 77) + end, 77 - end).Fill(Eos);
                    }
                }

                return (ids, [4, 77]);
            default:
                return ([49406, 320, 1125, 539, Eos, Eos, Eos, Eos, 49406, 7496, 4558, Eos, 12, 13, Eos, Eos], [2, 8]);
        }
    }

    private static InferenceSession Session(SafetensorsFile weights, ClipTextOptions? options = null, TensorElementType computeType = TensorElementType.Float, string? configPath = null)
    {
        var parameters = new SafetensorsParameters([weights], computeType);
        var graph = new GraphBuilder(parameters: parameters);
        ClipTextModel.FromConfig(ComponentConfig.Load(configPath ?? Path.Combine(TextEncoder, "config.json"))).Build(graph, options);
        return GraphRunner.Session(graph.ToBytes(), parameters.Folder);
    }

    private static SessionRun Run(InferenceSession session, int[] ids, long[] shape, params string[] outputs) =>
        SessionRun.Of(session, [SessionRun.Input(ClipTextModel.InputIdsName, ids, shape)],
            outputs.Length > 0 ? outputs : [ClipTextModel.LastHiddenStateName, ClipTextModel.PoolerOutputName]);

    private string WriteConfig(Action<System.Text.Json.Nodes.JsonObject> change)
    {
        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(TextEncoder, "config.json")))!.AsObject();
        change(config);
        string path = Path.Combine(_folder, $"config-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return path;
    }

    private static float[] Floats(SafetensorsFile weights, string name) => MemoryMarshal.Cast<byte, float>(weights.GetBytes(weights.Find(name)!)).ToArray();

    // nn.LayerNorm over rows of the last dimension, in double.
    private static float[] LayerNorm(float[] x, float[] scale, float[] offset, double epsilon)
    {
        int width = scale.Length;
        float[] y = new float[x.Length];
        for (int row = 0; row < x.Length / width; row++)
        {
            ReadOnlySpan<float> v = x.AsSpan(row * width, width);
            double mean = 0, variance = 0;
            foreach (float f in v)
            {
                mean += f;
            }

            mean /= width;
            foreach (float f in v)
            {
                variance += (f - mean) * (f - mean);
            }

            double inverse = 1 / Math.Sqrt((variance / width) + epsilon);
            for (int i = 0; i < width; i++)
            {
                y[(row * width) + i] = (float)(((v[i] - mean) * inverse * scale[i]) + offset[i]);
            }
        }

        return y;
    }
}
