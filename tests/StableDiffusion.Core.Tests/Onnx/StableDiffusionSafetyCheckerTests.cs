using System.Numerics.Tensors;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.OnnxRuntime;
using StableDiffusion.Core.Tests.Onnx.Support;
using StableDiffusion.Models;
using StableDiffusion.Onnx;
using StableDiffusion.Onnx.Builders;
using StableDiffusion.Safety;
using StableDiffusion.Testing;
using StableDiffusion.Weights;
using Xunit;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace StableDiffusion.Core.Tests.Onnx;

/// <summary>
/// The safety checker built from tiny-sd's diffusers folder (config.json, and model.safetensors read in place) against
/// diffusers' ONNX export of the same weights, whose thresholds are tuned to flag some images.
/// </summary>
[Trait("Area", "WeightsLoading")]
public sealed class StableDiffusionSafetyCheckerTests : IDisposable
{
    // The export's concept scores (cosine similarity - threshold + special-care adjustment) and special-care scores.
    private const string ExportConceptScores = "/Add_1_output_0";
    private const string ExportSpecialScores = "/Add_output_0";
    private const string ConceptScores = "concept_scores";
    private const string SpecialScores = "special_scores";

    private static readonly float[] GrayLevels = [0.5f, 0.75f, 0.25f, 1f];

    private readonly string _folder = Directory.CreateTempSubdirectory("sd-safety-checker-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static string Checker => Fixtures.PathOf("tiny-sd/safety_checker");

    private static string ExportPath => Fixtures.PathOf("tiny-sd-onnx/safety_checker/model.onnx");

    private static string FeatureExtractorConfig => Fixtures.PathOf("tiny-sd/feature_extractor/preprocessor_config.json");

    [Fact]
    public void Forward_GivesTheFlagsAndScoresOfTheOnnxExport()
    {
        Fixtures.Require();
        Reference.Published.Require();
        (float[][] clipInputs, float[][] images, long[] imageShape) = Inputs();
        using SafetensorsFile weights = SafetensorsFile.Open(Path.Combine(Checker, "model.safetensors"));
        using InferenceSession built = ScoresSession(weights);
        using InferenceSession export = new(OnnxGraphSurgery.AddGraphOutputs(File.ReadAllBytes(ExportPath), [ExportConceptScores, ExportSpecialScores]));

        var flags = new List<bool>();
        double worstConcept = 0, worstSpecial = 0;
        for (int i = 0; i < clipInputs.Length; i++)
        {
            SessionRun expected = SessionRun.Of(export, ExportInputs(clipInputs[i], images[i], imageShape), SafetyChecker.HasNsfwConceptsName, ExportConceptScores, ExportSpecialScores);
            SessionRun actual = SessionRun.Of(built, [SessionRun.Input(SafetyChecker.ClipInputName, clipInputs[i], [1, 3, 224, 224])], SafetyChecker.HasNsfwConceptsName, ConceptScores, SpecialScores);

            Assert.Equal(expected.Flags(SafetyChecker.HasNsfwConceptsName), actual.Flags(SafetyChecker.HasNsfwConceptsName));
            worstConcept = Math.Max(worstConcept, ArrayAssert.Close(expected[ExportConceptScores], actual[ConceptScores], 1e-5, $"input {i}: concept scores"));
            worstSpecial = Math.Max(worstSpecial, ArrayAssert.Close(expected[ExportSpecialScores], actual[SpecialScores], 1e-5, $"input {i}: special-care scores"));
            flags.Add(actual.Flags(SafetyChecker.HasNsfwConceptsName)[0]);
        }

        TestContext.Current.TestOutputHelper?.WriteLine($"{clipInputs.Length} inputs, flags {string.Join(", ", flags)}; worst concept score {worstConcept:G3}, special {worstSpecial:G3}");
        Assert.Contains(true, flags);
        Assert.Contains(false, flags);
    }

    [Fact]
    public void Forward_InTheCudaFusedFlavor_GivesThePlainGraphsScores()
    {
        // The flavor a float16 CUDA session builds with: the vision model's patch embedding reads NCHW pixels, which the
        // flavor's NHWC convolution cannot (it failed on the GPU: "Input channels C is not equal to kernel channels").
        // What is left of the flavor here runs on the CPU: the same operators, except the layer norms that take their
        // residual sums (SkipLayerNormalization) and the attention, which takes the projections' biases (MultiHeadAttention),
        // both with CPU kernels, so the two graphs agree to float32 rounding.
        Fixtures.Require();
        Reference.Published.Require();
        (float[][] clipInputs, _, _) = Inputs();
        using SafetensorsFile weights = SafetensorsFile.Open(Path.Combine(Checker, "model.safetensors"));
        using InferenceSession plain = ScoresSession(weights);
        using InferenceSession fused = ScoresSession(weights, GraphFlavor.CudaFused);
        ModelProto fusedModel = ModelProto.Parser.ParseFrom(ScoresGraph(weights, GraphFlavor.CudaFused).Graph);
        // tiny-sd's vision tower has two layers: one MultiHeadAttention each, fed q, k, v and the three biases; no Softmax left.
        Assert.Equal(2, fusedModel.Graph.Node.Count(n => n.OpType == "MultiHeadAttention" && n.Input.Count == 4));
        Assert.DoesNotContain(fusedModel.Graph.Node, n => n.OpType == "Softmax");

        foreach (float[] clipInput in clipInputs)
        {
            SessionRun[] runs = [.. new[] { plain, fused }.Select(session =>
                SessionRun.Of(session, [SessionRun.Input(SafetyChecker.ClipInputName, clipInput, [1, 3, 224, 224])], SafetyChecker.HasNsfwConceptsName, ConceptScores, SpecialScores))];

            Assert.Equal(runs[0].Flags(SafetyChecker.HasNsfwConceptsName), runs[1].Flags(SafetyChecker.HasNsfwConceptsName));
            ArrayAssert.Close(runs[0][ConceptScores], runs[1][ConceptScores], 1e-6, "concept scores");
            ArrayAssert.Close(runs[0][SpecialScores], runs[1][SpecialScores], 1e-6, "special-care scores");
        }
    }

    [Fact]
    public void Build_GivesTheFlagsOfTheOnnxExport_ImageByImage_FromTheClipInputAlone()
    {
        Fixtures.Require();
        Reference.Published.Require();
        (float[][] clipInputs, float[][] images, long[] imageShape) = Inputs();
        using SafetensorsFile weights = SafetensorsFile.Open(Path.Combine(Checker, "model.safetensors"));
        using InferenceSession built = Session(weights);
        using var export = new InferenceSession(ExportPath);

        // The checker blacks flagged images out on the host with either graph, so the built one neither takes nor returns them.
        Assert.Equal([SafetyChecker.ClipInputName], built.InputNames);
        Assert.Equal([SafetyChecker.HasNsfwConceptsName], built.OutputNames);
        for (int i = 0; i < clipInputs.Length; i++)
        {
            SessionRun expected = SessionRun.Of(export, ExportInputs(clipInputs[i], images[i], imageShape), SafetyChecker.HasNsfwConceptsName);
            SessionRun actual = SessionRun.Of(built, [SessionRun.Input(SafetyChecker.ClipInputName, clipInputs[i], [1, 3, 224, 224])], SafetyChecker.HasNsfwConceptsName);

            Assert.Equal(expected.Flags(SafetyChecker.HasNsfwConceptsName), actual.Flags(SafetyChecker.HasNsfwConceptsName));
        }
    }

    [Fact]
    public void Build_OnABatch_FlagsEachImage()
    {
        Fixtures.Require();
        using SafetensorsFile weights = SafetensorsFile.Open(Path.Combine(Checker, "model.safetensors"));
        using InferenceSession built = Session(weights);
        ClipImageProcessor processor = ClipImageProcessor.Load(FeatureExtractorConfig);
        Tensor<float> gray = Gray(32, 48, GrayLevels);

        SessionRun run = SessionRun.Of(built, [SessionRun.Input(SafetyChecker.ClipInputName, [.. processor.Preprocess(gray)], [4, 3, 224, 224])],
            SafetyChecker.HasNsfwConceptsName);

        Assert.Equal([false, true, false, true], run.Flags(SafetyChecker.HasNsfwConceptsName));
    }

    [Theory]
    [InlineData(TensorElementType.Float)]
    [InlineData(TensorElementType.Float16)]
    public void SafetyChecker_RunsTheBuiltGraphAsItRunsTheExport(TensorElementType computeType)
    {
        Fixtures.Require();
        using SafetensorsFile weights = SafetensorsFile.Open(Path.Combine(Checker, "model.safetensors"));
        using var checker = new SafetyChecker(Session(weights, computeType), ClipImageProcessor.Load(FeatureExtractorConfig), ownsSession: true);
        using SafetyChecker export = SafetyChecker.Load(ExportPath, FeatureExtractorConfig);
        Tensor<float> images = Gray(64, 64, GrayLevels);

        SafetyCheckerResult expected = export.Check(images, TestContext.Current.CancellationToken);
        SafetyCheckerResult actual = checker.Check(images, TestContext.Current.CancellationToken);

        Assert.Equal([false, true, false, true], expected.HasNsfwConcepts);
        Assert.Equal(expected.HasNsfwConcepts, actual.HasNsfwConcepts);
        Assert.Equal([.. expected.Images], [.. actual.Images]);
    }

    [Fact]
    public void Build_FromWeightsWithASingleVisionModelPrefix_GivesTheSameOutputs()
    {
        Fixtures.Require();
        Reference.Published.Require();
        (float[][] clipInputs, _, _) = Inputs();
        using SafetensorsFile doubled = SafetensorsFile.Open(Path.Combine(Checker, "model.safetensors"));
        using SafetensorsFile single = SafetensorsFile.Open(WeightFiles.Rewrite(doubled, Path.Combine(_folder, "model.safetensors"),
            n => n.StartsWith("vision_model.vision_model.", StringComparison.Ordinal) ? WeightFiles.WithoutPrefix(n, "vision_model.") : n));
        Assert.DoesNotContain(single.Tensors, t => t.Name.StartsWith("vision_model.vision_model.", StringComparison.Ordinal));
        using InferenceSession fromDoubled = ScoresSession(doubled);
        using InferenceSession fromSingle = ScoresSession(single);

        SessionRun expected = SessionRun.Of(fromDoubled, [SessionRun.Input(SafetyChecker.ClipInputName, clipInputs[0], [1, 3, 224, 224])], ConceptScores);
        SessionRun actual = SessionRun.Of(fromSingle, [SessionRun.Input(SafetyChecker.ClipInputName, clipInputs[0], [1, 3, 224, 224])], ConceptScores);

        Assert.Equal(expected[ConceptScores], actual[ConceptScores]);
    }

    [Fact]
    public void Build_KeepsEveryWeightInTheSafetensorsFile()
    {
        Fixtures.Require();
        using SafetensorsFile weights = SafetensorsFile.Open(Path.Combine(Checker, "model.safetensors"));
        var graph = new GraphBuilder(parameters: new SafetensorsParameters([weights]));
        StableDiffusionSafetyChecker.FromConfig(ComponentConfig.Load(Path.Combine(Checker, "config.json"))).Build(graph);

        GraphAssert.KeepsEveryWeightInItsFile(graph.ToModel(), weights);
    }

    [Theory]
    [InlineData("projection_dim", "64", "(projection_dim 64, vision_config.hidden_size 32) makes 'visual_projection.weight' [64, 32], but the weights store it as [32, 32]")]
    [InlineData("vision_config.hidden_act", "\"relu\"", "\"vision_config.hidden_act\": \"relu\", which this SDK cannot build")]
    [InlineData("vision_config.image_size", "256", "(vision_config.image_size 256, vision_config.patch_size 32, vision_config.hidden_size 32) makes 'vision_model.vision_model.embeddings.position_embedding.weight' [65, 32], but the weights store it as [50, 32]")]
    [InlineData("vision_config.patch_size", "16", "(vision_config.hidden_size 32, vision_config.num_channels 3, vision_config.patch_size 16) makes 'vision_model.vision_model.embeddings.patch_embedding.weight' [32, 3, 16, 16], but the weights store it as [32, 3, 32, 32]")]
    [InlineData("vision_config", "[]", "\"vision_config\": [], which this SDK cannot build; it supports an object.")]
    public void Build_WithAConfigurationItCannotBuildOverTheseWeights_ThrowsNamingTheField(string field, string value, string expected)
    {
        Fixtures.Require();
        JsonObject config = JsonNode.Parse(File.ReadAllText(Path.Combine(Checker, "config.json")))!.AsObject();
        string[] path = field.Split('.');
        (path.Length == 1 ? config : config[path[0]]!.AsObject())[path[^1]] = JsonNode.Parse(value);
        string configPath = Path.Combine(_folder, "config.json");
        File.WriteAllText(configPath, config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        using SafetensorsFile weights = SafetensorsFile.Open(Path.Combine(Checker, "model.safetensors"));

        var ex = Assert.Throws<ModelLoadException>(() =>
            StableDiffusionSafetyChecker.FromConfig(ComponentConfig.Load(configPath)).Build(new GraphBuilder(parameters: new SafetensorsParameters([weights]))));

        Assert.Contains($"The configuration '{configPath}'", ex.Message, StringComparison.Ordinal);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Build_OverWeightsWithoutTheConcepts_ThrowsNamingTheTensor()
    {
        Fixtures.Require();
        using SafetensorsFile source = SafetensorsFile.Open(Path.Combine(Checker, "model.safetensors"));
        using SafetensorsFile weights = SafetensorsFile.Open(WeightFiles.Rewrite(source, Path.Combine(_folder, "model.safetensors"), n => n == "concept_embeds_weights" ? null : n));

        var ex = Assert.Throws<ModelLoadException>(() =>
            StableDiffusionSafetyChecker.FromConfig(ComponentConfig.Load(Path.Combine(Checker, "config.json"))).Build(new GraphBuilder(parameters: new SafetensorsParameters([weights]))));

        Assert.Contains("have no tensor 'concept_embeds_weights'", ex.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// CLIP inputs, one image each: the reference's safety images and uniform grays (some flagged) through the feature
    /// extractor, and random CLIP inputs; the images to black out are the decoded ones (random ones for the random inputs).
    /// </summary>
    private static (float[][] ClipInputs, float[][] Images, long[] ImageShape) Inputs()
    {
        ClipImageProcessor processor = ClipImageProcessor.Load(FeatureExtractorConfig);
        NpyArray reference = Reference.Published.Array("safety/ref_images");
        Tensor<float> decoded = Tensor.Create([.. reference.ToSingle(), .. Gray(64, 96, GrayLevels)], [reference.Shape[0] + GrayLevels.Length, 64, 96, 3]);
        float[] clip = [.. processor.Preprocess(decoded)];
        int count = (int)decoded.Lengths[0], clipLength = 3 * 224 * 224, imageLength = 64 * 96 * 3;
        float[] images = [.. decoded];
        var clipInputs = Enumerable.Range(0, count).Select(i => clip[(i * clipLength)..((i + 1) * clipLength)]).ToList();
        var imageList = Enumerable.Range(0, count).Select(i => images[(i * imageLength)..((i + 1) * imageLength)]).ToList();
        for (int seed = 0; seed < 3; seed++)
        {
            clipInputs.Add([.. GraphRunner.Random(clipLength, seed).Select(v => v * 2)]);
            imageList.Add([.. GraphRunner.Random(imageLength, seed + 10).Select(v => (v + 1) / 2)]);
        }

        return ([.. clipInputs], [.. imageList], [1, 64, 96, 3]);
    }

    private static (string, OrtValue)[] ExportInputs(float[] clipInput, float[] image, long[] imageShape) =>
        [SessionRun.Input(SafetyChecker.ClipInputName, clipInput, [1, 3, 224, 224]), SessionRun.Input(SafetyChecker.ImagesInputName, image, imageShape)];

    private static Tensor<float> Gray(int height, int width, float[] levels) =>
        Tensor.Create([.. levels.SelectMany(level => Enumerable.Repeat(level, height * width * 3))], [levels.Length, height, width, 3]);

    private static InferenceSession Session(SafetensorsFile weights, TensorElementType computeType = TensorElementType.Float)
    {
        var parameters = new SafetensorsParameters([weights], computeType);
        var graph = new GraphBuilder(parameters: parameters);
        StableDiffusionSafetyChecker.FromConfig(ComponentConfig.Load(Path.Combine(Checker, "config.json"))).Build(graph);
        return GraphRunner.Session(graph.ToBytes(), parameters.Folder);
    }

    // The verdict with the scores behind it, which the export's signature leaves out.
    private static InferenceSession ScoresSession(SafetensorsFile weights, GraphFlavor? flavor = null)
    {
        (byte[] graph, string folder) = ScoresGraph(weights, flavor);
        return GraphRunner.Session(graph, folder);
    }

    private static (byte[] Graph, string DataFolder) ScoresGraph(SafetensorsFile weights, GraphFlavor? flavor = null)
    {
        var parameters = new SafetensorsParameters([weights]);
        var graph = new GraphBuilder(parameters: parameters, flavor: flavor);
        StableDiffusionSafetyChecker checker = StableDiffusionSafetyChecker.FromConfig(ComponentConfig.Load(Path.Combine(Checker, "config.json")));
        Value clipInput = graph.Input(SafetyChecker.ClipInputName, TensorElementType.Float, "batch", 3, 224, 224);
        (Value flags, Value conceptScores, Value specialScores) = checker.Forward(graph, clipInput);
        graph.Output(flags, SafetyChecker.HasNsfwConceptsName, "batch");
        graph.Output(conceptScores, ConceptScores, "batch", StableDiffusionSafetyChecker.ConceptCount);
        graph.Output(specialScores, SpecialScores, "batch", StableDiffusionSafetyChecker.SpecialCareCount);
        return (graph.ToBytes(), parameters.Folder);
    }
}
