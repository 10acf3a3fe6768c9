extern alias core;

using System.Numerics.Tensors;
using Microsoft.ML.OnnxRuntime;
using StableDiffusion.Safety.Tests.Preprocessing;
using core::StableDiffusion.Onnx;
using StableDiffusion.Safety.Tests.TestModels;
using Xunit;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace StableDiffusion.Safety.Tests.SafetyChecking;

/// <summary>
/// The checker on synthetic graphs built by <see cref="TestGraphs"/>: float16 exports, fixed dimensions, signatures that
/// are not a safety checker's, and a slow graph to cancel inside a run. Their rule: an image is flagged when the mean
/// of its CLIP input exceeds 0.5, which uniform gray 0.75 does (about 1.1) and 0.5 does not (about 0.14).
/// </summary>
[Trait("Area", "Safety")]
public sealed class SafetyCheckerGraphTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(TensorElementType.Float, true)]
    [InlineData(TensorElementType.Float16, true)]
    [InlineData(TensorElementType.Float, false)]
    public void Check_Float32AndFloat16Graphs_AndTheVerdictAlone_FlagAndBlackOutTheSameImages(TensorElementType elementType, bool takesImages)
    {
        // Without the images (the verdict alone), the flagged ones are blacked out on the host just the same.
        using SafetyChecker checker = Create(TestGraphs.MeanThresholdChecker(elementType, takesImages: takesImages));
        Tensor<float> images = ClipImageProcessorTests.Gray(3, 40, 24, 0.75f, 0.5f, 0.3f + (1f / 3));

        SafetyCheckerResult result = checker.Check(images, Ct);

        Assert.Equal([true, false, true], result.HasNsfwConcepts);
        float[] after = ClipImageProcessorTests.Flatten(result.Images);
        int imageLength = 40 * 24 * 3;
        Assert.All(after[..imageLength], v => Assert.Equal(0f, v));
        Assert.All(after[imageLength..(2 * imageLength)], v => Assert.Equal(0.5f, v)); // float32, not rounded through float16
        Assert.All(after[(2 * imageLength)..], v => Assert.Equal(0f, v));
    }

    [Fact]
    public void Check_GraphWithAFixedBatchOfOne_ChecksAnyBatch()
    {
        using SafetyChecker checker = Create(TestGraphs.MeanThresholdChecker(clipDims: [1, 3, 224, 224], imageDims: [1, "h", "w", 3]));

        SafetyCheckerResult result = checker.Check(ClipImageProcessorTests.Gray(3, 16, 16, 0.5f, 0.75f, 0.5f), Ct);

        Assert.Equal([false, true, false], result.HasNsfwConcepts);
    }

    [Fact]
    public void Constructor_GraphForAnotherClipSize_ThrowsNamingBothFiles()
    {
        using var session = new InferenceSession(TestGraphs.MeanThresholdChecker(clipDims: ["batch", 3, 112, 112]));
        var config = ClipImageProcessorConfig.Default with { Source = "fe/preprocessor_config.json" };

        var ex = Assert.Throws<SafetyCheckerModelException>(() => new SafetyChecker(session, new ClipImageProcessor(config), modelPath: "sc/model.onnx"));

        Assert.Contains("'sc/model.onnx'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("112x112", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'fe/preprocessor_config.json'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_GraphExportedForAnotherImageSize_ThrowsArgumentException()
    {
        using SafetyChecker checker = Create(TestGraphs.MeanThresholdChecker(imageDims: ["batch", 512, 512, 3]));

        var ex = Assert.Throws<ArgumentException>(() => checker.Check(ClipImageProcessorTests.Gray(1, 64, 64, 0.5f), Ct));

        Assert.Contains("512x512", ex.Message, StringComparison.Ordinal);
        Assert.Contains("64x64", ex.Message, StringComparison.Ordinal);
    }

    public static TheoryData<string, string> WrongSignatures() => new()
    {
        { "no-images", "no input named 'images' for its output 'out_images'" },
        { "int64-clip", "'clip_input' is Int64 [?, 3, ?, ?], not a float or float16 tensor" },
        { "rank3-clip", "input 'clip_input' has rank 3, not 4" },
        { "four-channels", "input 'images' has 4 channels (dimension 3), not 3" },
        { "float-flags", "output 'has_nsfw_concepts' is Float [?], not a bool tensor" },
        { "no-out-images", "no output named 'out_images' for its input 'images'" },
        { "extra-input", "inputs a safety checker does not take ('timestep')" },
        { "batch-of-two", "input 'clip_input' has a fixed batch of 2" },
    };

    [Theory]
    [MemberData(nameof(WrongSignatures))]
    public void Constructor_GraphThatIsNotASafetyChecker_ThrowsNamingWhatIsWrong(string variant, string expected)
    {
        using var session = new InferenceSession(WrongGraph(variant));

        var ex = Assert.Throws<SafetyCheckerModelException>(
            () => new SafetyChecker(session, new ClipImageProcessor(ClipImageProcessorConfig.Default), modelPath: "models/x/safety_checker/model.onnx"));

        Assert.Contains("Safety checker graph 'models/x/safety_checker/model.onnx' is not a Stable Diffusion safety checker graph", ex.Message, StringComparison.Ordinal);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.Equal("models/x/safety_checker/model.onnx", ex.ModelPath);
    }

    [Fact]
    public void Check_GraphReturningSeveralFlagsPerImage_Throws()
    {
        var graph = new GraphBuilder();
        Value clip = graph.Input(SafetyChecker.ClipInputName, TensorElementType.Float, "batch", 3, "h", "w");
        Value images = graph.Input(SafetyChecker.ImagesInputName, TensorElementType.Float, "batch", "ih", "iw", 3);
        graph.Output(images, SafetyChecker.OutputImagesName, "batch", "ih", "iw", 3);
        graph.Output(clip.ReduceMean([2, 3], keepDimensions: false).Greater(graph.Scalar(0.5f)), SafetyChecker.HasNsfwConceptsName, "batch");
        using SafetyChecker checker = Create(graph.ToBytes());

        var ex = Assert.Throws<SafetyCheckerModelException>(() => checker.Check(ClipImageProcessorTests.Gray(1, 8, 8, 0.5f), Ct));

        Assert.Contains("returned 3 values in 'has_nsfw_concepts' for one image", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckAsync_CancelledDuringARun_StopsInsideTheGraphAndLeavesTheSessionUsable()
    {
        // 100 products of 2048 x 2048 matrices for a 256-pixel-high image: far longer than the 200 ms before cancelling.
        using SafetyChecker checker = Create(TestGraphs.SlowChecker(multiplications: 100));
        using var cts = new CancellationTokenSource();

        Task<SafetyCheckerResult> check = checker.CheckAsync(ClipImageProcessorTests.Gray(1, 256, 16, 0.75f), cts.Token);
        await Task.Delay(TimeSpan.FromMilliseconds(200), Ct);
        cts.Cancel();

        // With one image there is nothing between runs: the cancellation must have come through RunOptions.Terminate.
        var ex = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => check);
        Assert.IsType<OnnxRuntimeException>(ex.InnerException);
        Assert.Equal(cts.Token, ex.CancellationToken);

        // The same session still runs to the end (128 x 128 products for a 16-pixel-high image).
        Assert.Equal([true, false], checker.Check(ClipImageProcessorTests.Gray(2, 16, 16, 0.75f, 0.5f), Ct).HasNsfwConcepts);
    }

    [Fact]
    public void Load_WithAProcessor_UsesItsBackend()
    {
        string path = TestGraphs.Save(TestGraphs.MeanThresholdChecker());
        try
        {
            var pil = new ClipImageProcessor(ClipImageProcessorConfig.Default with { Backend = ImageProcessorBackend.Pil });

            using SafetyChecker checker = SafetyChecker.Load(path, pil);

            Assert.Same(pil, checker.FeatureExtractor);
            Assert.Equal(path, checker.ModelPath);
            Assert.Equal([true, false], checker.Check(ClipImageProcessorTests.Gray(2, 8, 8, 0.75f, 0.5f), Ct).HasNsfwConcepts);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static SafetyChecker Create(byte[] graph) =>
        new(new InferenceSession(graph), new ClipImageProcessor(ClipImageProcessorConfig.Default), ownsSession: true);

    private static byte[] WrongGraph(string variant)
    {
        TensorElementType clipType = variant == "int64-clip" ? TensorElementType.Int64 : TensorElementType.Float;
        Dim[] clipDims = variant switch
        {
            "rank3-clip" => ["batch", 3, "h"],
            "batch-of-two" => [2, 3, "h", "w"],
            _ => ["batch", 3, "h", "w"],
        };
        Dim[] imageDims = variant == "four-channels" ? ["batch", "ih", "iw", 4] : ["batch", "ih", "iw", 3];
        var graph = new GraphBuilder();
        Value clip = graph.Input(SafetyChecker.ClipInputName, clipType, clipDims);
        Value? images = variant != "no-images" ? graph.Input(SafetyChecker.ImagesInputName, TensorElementType.Float, imageDims) : null;
        if (variant == "extra-input")
        {
            graph.Input("timestep", TensorElementType.Float, 1);
        }

        Value clip32 = clip.Cast(TensorElementType.Float);
        Value score = clip32.ReduceMean(variant == "rank3-clip" ? [1, 2] : [1, 2, 3], keepDimensions: false);
        if (variant == "float-flags")
        {
            graph.Output(score, SafetyChecker.HasNsfwConceptsName, "batch");
        }
        else
        {
            graph.Output(score.Greater(graph.Scalar(0.5f)), SafetyChecker.HasNsfwConceptsName, "batch");
        }

        if (variant != "no-out-images")
        {
            graph.Output(images ?? clip32, SafetyChecker.OutputImagesName, images is null ? clipDims : imageDims);
        }

        return graph.ToBytes();
    }
}
