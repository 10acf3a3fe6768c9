using System.Numerics.Tensors;
using Microsoft.ML.OnnxRuntime;
using StableDiffusion.Safety.Tests.Preprocessing;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Safety.Tests.SafetyChecking;

/// <summary>
/// The checker on the tiny model's real safety checker graph (random weights, thresholds tuned so that some images are
/// flagged): uniform gray at 0.5 and 0.25 passes, 0.75 and 1.0 are flagged.
/// </summary>
[Trait("Area", "Safety")]
public sealed class SafetyCheckerTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string ModelPath => Path.Combine(Fixtures.TinyModel, "safety_checker", "model.onnx");

    private static string ConfigPath => Path.Combine(Fixtures.TinyModel, "feature_extractor", "preprocessor_config.json");

    [Fact]
    public void Check_FlagsEachImage_AndReturnsOnlyTheFlaggedOnesBlack()
    {
        Fixtures.Require();
        using SafetyChecker checker = SafetyChecker.Load(ModelPath, ConfigPath);
        Tensor<float> images = ClipImageProcessorTests.Gray(4, 64, 64, 0.5f, 0.75f, 0.25f, 1f);
        float[] before = ClipImageProcessorTests.Flatten(images);

        SafetyCheckerResult result = checker.Check(images, Ct);

        Assert.Equal([false, true, false, true], result.HasNsfwConcepts);
        Assert.Equal(images.Lengths.ToArray(), result.Images.Lengths.ToArray());
        float[] after = ClipImageProcessorTests.Flatten(result.Images);
        int imageLength = 64 * 64 * 3;
        for (int i = 0; i < 4; i++)
        {
            float[] expected = result.HasNsfwConcepts[i] ? new float[imageLength] : before[(i * imageLength)..((i + 1) * imageLength)];
            Assert.Equal(expected, after[(i * imageLength)..((i + 1) * imageLength)]);
        }

        Assert.Equal(before, ClipImageProcessorTests.Flatten(images)); // the input is not modified
    }

    [Fact]
    public void Check_EqualsTheGraphsOwnOutputs_RunImageByImage()
    {
        Fixtures.Require();
        Reference.Published.Require();
        using var session = new InferenceSession(ModelPath);
        using var checker = new SafetyChecker(session, ClipImageProcessor.Load(ConfigPath), modelPath: ModelPath);
        NpyArray reference = Reference.Published.Array("safety/ref_images");
        float[] mixed = [.. reference.ToSingle(), .. ClipImageProcessorTests.Flatten(ClipImageProcessorTests.Gray(2, 64, 96, 0.5f))];
        Tensor<float> images = Tensor.Create(mixed, [4, 64, 96, 3]);

        SafetyCheckerResult result = checker.Check(images, Ct);

        // diffusers' OnnxStableDiffusionPipeline: clip_input from the feature extractor, one graph run per image.
        float[] clip = ClipImageProcessorTests.Flatten(checker.FeatureExtractor.Preprocess(images));
        float[] after = ClipImageProcessorTests.Flatten(result.Images);
        int clipLength = 3 * 224 * 224, imageLength = 64 * 96 * 3;
        for (int i = 0; i < 4; i++)
        {
            using OrtValue clipInput = OrtValue.CreateTensorValueFromMemory(clip[(i * clipLength)..((i + 1) * clipLength)], [1, 3, 224, 224]);
            using OrtValue imageInput = OrtValue.CreateTensorValueFromMemory(mixed[(i * imageLength)..((i + 1) * imageLength)], [1, 64, 96, 3]);
            using var runOptions = new RunOptions();
            using var outputs = session.Run(
                runOptions,
                [SafetyChecker.ClipInputName, SafetyChecker.ImagesInputName],
                [clipInput, imageInput],
                [SafetyChecker.OutputImagesName, SafetyChecker.HasNsfwConceptsName]);
            Assert.Equal(outputs[1].GetTensorDataAsSpan<bool>()[0], result.HasNsfwConcepts[i]);
            Assert.Equal(outputs[0].GetTensorDataAsSpan<float>().ToArray(), after[(i * imageLength)..((i + 1) * imageLength)]);
        }

        Assert.Contains(true, result.HasNsfwConcepts);
        Assert.Contains(false, result.HasNsfwConcepts);
    }

    [Fact]
    public void Check_Batch_EqualsCheckingEachImageAlone()
    {
        Fixtures.Require();
        using SafetyChecker checker = SafetyChecker.Load(ModelPath, ConfigPath);
        Tensor<float> batch = ClipImageProcessorTests.Gray(3, 32, 48, 0.75f, 0.5f, 1f);

        SafetyCheckerResult together = checker.Check(batch, Ct);

        float[] levels = [0.75f, 0.5f, 1f];
        for (int i = 0; i < 3; i++)
        {
            SafetyCheckerResult alone = checker.Check(ClipImageProcessorTests.Gray(1, 32, 48, levels[i]), Ct);
            Assert.Equal(alone.HasNsfwConcepts[0], together.HasNsfwConcepts[i]);
        }
    }

    [Fact]
    public async Task CheckAsync_GivesTheSameResultAsCheck()
    {
        Fixtures.Require();
        using SafetyChecker checker = SafetyChecker.Load(ModelPath, ConfigPath);
        Tensor<float> images = ClipImageProcessorTests.Gray(2, 64, 64, 1f, 0.5f);

        SafetyCheckerResult result = await checker.CheckAsync(images, Ct);

        Assert.Equal(checker.Check(images, Ct).HasNsfwConcepts, result.HasNsfwConcepts);
        Assert.Equal(ClipImageProcessorTests.Flatten(checker.Check(images, Ct).Images), ClipImageProcessorTests.Flatten(result.Images));
    }

    [Fact]
    public void HasNsfwConcept_RgbPicture_AgreesWithTheTensorCheck()
    {
        Fixtures.Require();
        using SafetyChecker checker = SafetyChecker.Load(ModelPath, ConfigPath);
        byte[] light = Enumerable.Repeat((byte)191, 64 * 64 * 3).ToArray();
        byte[] mid = Enumerable.Repeat((byte)128, 64 * 64 * 3).ToArray();

        Assert.True(checker.HasNsfwConcept(light, 64, 64, Ct));
        Assert.False(checker.HasNsfwConcept(mid, 64, 64, Ct));
        Assert.Equal(checker.Check(ClipImageProcessorTests.Gray(1, 64, 64, 191 / 255f), Ct).HasNsfwConcepts[0], checker.HasNsfwConcept(light, 64, 64, Ct));
    }

    [Fact]
    public void Check_FromSeveralThreads_GivesTheSequentialResults()
    {
        Fixtures.Require();
        using SafetyChecker checker = SafetyChecker.Load(ModelPath, ConfigPath);
        float[] levels = [0.5f, 0.75f, 0.25f, 1f];
        bool[] expected = [.. levels.Select(l => checker.Check(ClipImageProcessorTests.Gray(1, 64, 64, l), Ct).HasNsfwConcepts[0])];

        var results = new bool[32];
        Parallel.For(0, results.Length, i => results[i] = checker.Check(ClipImageProcessorTests.Gray(1, 64, 64, levels[i % 4]), Ct).HasNsfwConcepts[0]);

        Assert.Equal(Enumerable.Range(0, 32).Select(i => expected[i % 4]), results);
    }

    [Fact]
    public void Check_PreCancelledToken_ThrowsAndLeavesTheCheckerUsable()
    {
        Fixtures.Require();
        using SafetyChecker checker = SafetyChecker.Load(ModelPath, ConfigPath);
        Tensor<float> images = ClipImageProcessorTests.Gray(2, 64, 64, 0.5f, 1f);

        Assert.Throws<OperationCanceledException>(() => checker.Check(images, new CancellationToken(canceled: true)));
        Assert.Equal([false, true], checker.Check(images, Ct).HasNsfwConcepts);
    }

    [Fact]
    public async Task CheckAsync_CancelledDuringABatch_ThrowsAndLeavesTheCheckerUsable()
    {
        Fixtures.Require();
        using SafetyChecker checker = SafetyChecker.Load(ModelPath, ConfigPath);
        Tensor<float> many = ClipImageProcessorTests.Gray(400, 64, 64, 0.5f);
        using var cts = new CancellationTokenSource();

        Task<SafetyCheckerResult> check = checker.CheckAsync(many, cts.Token);
        cts.CancelAfter(TimeSpan.FromMilliseconds(20));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => check);
        Assert.Equal([true], checker.Check(ClipImageProcessorTests.Gray(1, 64, 64, 1f), Ct).HasNsfwConcepts);
    }

    [Fact]
    public void Dispose_ThenCheck_ThrowsObjectDisposed()
    {
        Fixtures.Require();
        SafetyChecker checker = SafetyChecker.Load(ModelPath, ConfigPath);
        Tensor<float> images = ClipImageProcessorTests.Gray(1, 64, 64, 0.5f);
        byte[] picture = new byte[8 * 8 * 3];

        checker.Dispose();
        checker.Dispose(); // idempotent

        Assert.Throws<ObjectDisposedException>(() => checker.Check(images, Ct));
        Assert.Throws<ObjectDisposedException>(() => { _ = checker.CheckAsync(images, Ct); });
        Assert.Throws<ObjectDisposedException>(() => checker.HasNsfwConcept(picture, 8, 8, Ct));
    }

    [Fact]
    public void Dispose_OfACheckerThatDoesNotOwnTheSession_LeavesTheSessionUsable()
    {
        Fixtures.Require();
        using var session = new InferenceSession(ModelPath);
        var processor = ClipImageProcessor.Load(ConfigPath);
        Tensor<float> images = ClipImageProcessorTests.Gray(1, 64, 64, 1f);

        using (var first = new SafetyChecker(session, processor))
        {
            Assert.True(first.Check(images, Ct).HasNsfwConcepts[0]);
        }

        using var second = new SafetyChecker(session, processor);
        Assert.True(second.Check(images, Ct).HasNsfwConcepts[0]);
    }

    [Theory]
    [InlineData(new int[] { 64, 64, 3 }, "rank-4")]
    [InlineData(new int[] { 1, 3, 64, 64 }, "NHWC")]
    [InlineData(new int[] { 0, 64, 64, 3 }, "must not be empty")]
    public void Check_WrongShape_ThrowsArgumentException(int[] shape, string expected)
    {
        Fixtures.Require();
        using SafetyChecker checker = SafetyChecker.Load(ModelPath, ConfigPath);
        float[] values = new float[shape.Aggregate(1, (a, b) => a * b)];

        var ex = Assert.Throws<ArgumentException>(() => checker.Check(Tensor.Create(values, [.. shape.Select(d => (nint)d)]), Ct));

        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_NaN_ThrowsArgumentOutOfRange()
    {
        Fixtures.Require();
        using SafetyChecker checker = SafetyChecker.Load(ModelPath, ConfigPath);
        Tensor<float> images = ClipImageProcessorTests.Gray(2, 16, 16, 0.5f);
        images[1, 3, 3, 0] = float.NaN;

        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => checker.Check(images, Ct));

        Assert.Contains("NaN", ex.Message, StringComparison.Ordinal);
        Assert.Contains("image 1", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_MissingModel_ThrowsFileNotFoundNamingIt()
    {
        string path = Path.Combine(Path.GetTempPath(), $"missing-{Guid.NewGuid():N}", "model.onnx");

        var ex = Assert.Throws<FileNotFoundException>(() => SafetyChecker.Load(path, "unused.json"));

        Assert.Equal(path, ex.FileName);
        Assert.Contains("safety_checker/model.onnx", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_CorruptOnnxFile_ThrowsSafetyCheckerModelExceptionNamingIt()
    {
        Fixtures.Require();
        string path = Path.Combine(Path.GetTempPath(), $"corrupt-{Guid.NewGuid():N}.onnx");
        File.WriteAllBytes(path, [0x08, 0xFF, 0xFF, 0x01, 0x02, 0x03, 0x04]);
        try
        {
            var ex = Assert.Throws<SafetyCheckerModelException>(() => SafetyChecker.Load(path, ConfigPath));

            Assert.Equal(path, ex.ModelPath);
            Assert.Contains(path, ex.Message, StringComparison.Ordinal);
            Assert.IsType<OnnxRuntimeException>(ex.InnerException);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Load_AnotherComponentsGraph_ThrowsNamingTheFileAndTheExpectedSignature()
    {
        Fixtures.Require();
        string textEncoder = Path.Combine(Fixtures.TinyModel, "text_encoder", "model.onnx");

        var ex = Assert.Throws<SafetyCheckerModelException>(() => SafetyChecker.Load(textEncoder, ConfigPath));

        Assert.Equal(textEncoder, ex.ModelPath);
        Assert.Contains(textEncoder, ex.Message, StringComparison.Ordinal);
        Assert.Contains("no input named 'clip_input'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'has_nsfw_concepts' (bool, [batch])", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'input_ids'", ex.Message, StringComparison.Ordinal); // what it found
    }
}
