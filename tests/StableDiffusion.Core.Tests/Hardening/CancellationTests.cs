using StableDiffusion.Core.Tests.EndToEnd.Support;
using StableDiffusion.Core.Tests.Hardening.Drills;
using StableDiffusion.Imaging;
using StableDiffusion.Pipelines;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.Hardening;

/// <summary>
/// Cancelling at any point (before the call, in each stage at its start or partway through a model call, during a
/// download) throws <see cref="OperationCanceledException"/>, leaves the pipeline usable, and the next generation gives the
/// reference image. The latencies (within one UNet call) are measured by the hardening benchmark over 100 cancellations.
/// </summary>
[Trait("Category", "Hardening")]
public sealed class CancellationTests(TinyPipelines pipelines)
{
    [Theory]
    [InlineData(CancellationPoint.BeforeStart, CancellationTiming.AtStageStart)]
    [InlineData(CancellationPoint.PromptEncoding, CancellationTiming.AtStageStart)]
    [InlineData(CancellationPoint.PromptEncoding, CancellationTiming.DuringModelCall)]
    [InlineData(CancellationPoint.ImageEncoding, CancellationTiming.AtStageStart)]
    [InlineData(CancellationPoint.ImageEncoding, CancellationTiming.DuringModelCall)]
    [InlineData(CancellationPoint.Denoising, CancellationTiming.AtStageStart)]
    [InlineData(CancellationPoint.Denoising, CancellationTiming.DuringModelCall)]
    [InlineData(CancellationPoint.Decoding, CancellationTiming.AtStageStart)]
    [InlineData(CancellationPoint.Decoding, CancellationTiming.DuringModelCall)]
    public async Task CancellingAt_ThrowsOperationCanceledAndLeavesThePipelineCorrect(CancellationPoint point, CancellationTiming timing)
    {
        var picture = TestImages.Picture();
        CancellationDrill drill = await CreateDrillAsync(picture);

        CancellationOutcome outcome = await drill.RunOnceAsync(point, new Random(1234), TestContext.Current.CancellationToken, timing);

        Assert.True(timing == CancellationTiming.AtStageStart ? outcome.Cancelled : outcome.Correct, $"{point}, {timing} (stage {outcome.Stage}): {outcome.Outcome}");
        Assert.True(outcome.NextGenerationIdentical, $"{point}, {timing}: the generation after the cancellation differs from the reference.");
    }

    [Fact]
    public async Task CancellingAtRandomPoints_TenTimes_NeverBreaksThePipeline()
    {
        var picture = TestImages.Picture();
        CancellationDrill drill = await CreateDrillAsync(picture);
        var random = new Random(42);
        CancellationPoint[] points = Enum.GetValues<CancellationPoint>();

        for (int i = 0; i < 10; i++)
        {
            CancellationOutcome outcome = await drill.RunOnceAsync(points[random.Next(points.Length)], random, TestContext.Current.CancellationToken);

            Assert.True(outcome.Correct, $"{outcome.Point} (stage {outcome.Stage}): {outcome.Outcome}");
            Assert.True(outcome.NextGenerationIdentical, $"{outcome.Point}: the generation after the cancellation differs from the reference.");
        }
    }

    [Fact]
    public async Task CancellingInAStepCallback_RunsNoFurtherUNetCall()
    {
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var steps = new List<int>();
        var request = new TextToImageRequest("a lighthouse")
        {
            Seed = 3, NumInferenceSteps = 6, Height = 64, Width = 64,
            OnStepEnd = step =>
            {
                steps.Add(step.StepIndex);
                if (step.StepIndex == 2)
                {
                    cancellation.Cancel();
                }
            },
        };

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pipelines.TextToImage.GenerateAsync(request, cancellation.Token));

        Assert.Equal([0, 1, 2], steps);
    }

    [Fact]
    public async Task CancellingADownload_ThrowsOperationCanceled_LeavesNoPartialBlob_AndTheNextLoadIsCorrect()
    {
        Fixtures.Require();
        CancellationToken ct = TestContext.Current.CancellationToken;
        await using DownloadCancellationDrill drill = await DownloadCancellationDrill.StartAsync(Fixtures.TinyModel, chunkBytes: 256 * 1024, pause: TimeSpan.FromMilliseconds(5));

        foreach (int milliseconds in new[] { 0, 20, 60, 120 })
        {
            DownloadCancellationOutcome outcome = await drill.RunOnceAsync(TimeSpan.FromMilliseconds(milliseconds));

            Assert.True(outcome.Cancelled, $"Cancelled after {milliseconds} ms: {outcome.Outcome}");
            Assert.Empty(outcome.CacheProblems);
        }

        using StableDiffusionPipeline downloaded = await drill.LoadAsync(ct);
        var request = new TextToImageRequest("a lighthouse") { Seed = 8, NumInferenceSteps = 3, Height = 64, Width = 64 };
        using GenerationResult expected = await pipelines.TextToImage.GenerateAsync(request, ct);
        using GenerationResult actual = await downloaded.GenerateAsync(request, ct);
        ResultAssert.Identical(expected, actual, "the model downloaded after the cancellations");
        Assert.Empty(drill.CacheProblems());
    }

    private Task<CancellationDrill> CreateDrillAsync(RgbImage picture) =>
        CancellationDrill.CreateAsync(pipelines.VariantsImageToImage,
            new Img2ImgRequest("a lighthouse at dusk", picture) { Seed = 21, NumInferenceSteps = 6, Strength = 0.8 }, TestContext.Current.CancellationToken);
}
