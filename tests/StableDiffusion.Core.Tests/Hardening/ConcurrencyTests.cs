using StableDiffusion.Core.Tests.EndToEnd.Support;
using StableDiffusion.Core.Tests.Hardening.Drills;
using StableDiffusion.Pipelines;
using Xunit;

namespace StableDiffusion.Core.Tests.Hardening;

/// <summary>
/// One pipeline called from N threads at once gives every caller exactly the image it gets alone (byte for byte), with no
/// deadlock. Throughput per N is measured by the hardening benchmark (docs/hardening.md).
/// </summary>
[Trait("Category", "Hardening")]
public sealed class ConcurrencyTests(TinyPipelines pipelines)
{
    private static readonly TimeSpan DeadlockTimeout = TimeSpan.FromMinutes(2);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(8)]
    public async Task ConcurrentGenerations_AreByteIdenticalToSequentialOnes(int concurrency)
    {
        StableDiffusionPipeline pipeline = pipelines.TextToImage;
        IReadOnlyList<TextToImageRequest> requests = ConcurrencyDrill.Requests(pipeline, concurrency, steps: 4);

        ConcurrencyOutcome outcome = await ConcurrencyDrill.RunAsync(pipeline, requests, DeadlockTimeout, TestContext.Current.CancellationToken);

        Assert.Equal(0, outcome.Mismatches);
    }

    [Fact]
    public async Task ConcurrentGenerations_OfAllThreePipelinesOnSharedSessions_AreByteIdenticalToSequentialOnes()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        var picture = TestImages.Picture();
        var mask = TestImages.Mask();
        var text = new TextToImageRequest("a lighthouse") { Seed = 5, NumInferenceSteps = 4, Height = 64, Width = 64 };
        var edit = new Img2ImgRequest("a lighthouse at night", picture) { Seed = 6, NumInferenceSteps = 4, Strength = 0.6 };
        var inpaint = new InpaintRequest("a red door", picture, mask) { Seed = 7, NumInferenceSteps = 4, Height = 64, Width = 64 };
        Func<Task<GenerationResult>>[] calls =
        [
            () => pipelines.TextToImage.GenerateAsync(text, ct),
            () => pipelines.ImageToImage.GenerateAsync(edit, ct),
            () => pipelines.LatentInpaint.GenerateAsync(inpaint, ct),
            () => pipelines.Inpaint.GenerateAsync(inpaint, ct),
        ];
        var alone = new List<byte[]>();
        foreach (Func<Task<GenerationResult>> call in calls)
        {
            using GenerationResult result = await call();
            alone.Add(GenerationBytes.Of(result));
        }

        GenerationResult[] together = await Task.WhenAll(calls.Concat(calls).Select(call => Task.Run(call, ct))).WaitAsync(DeadlockTimeout, ct);

        for (int i = 0; i < together.Length; i++)
        {
            using GenerationResult result = together[i];
            Assert.True(GenerationBytes.Of(result).AsSpan().SequenceEqual(alone[i % calls.Length]), $"Call {i} differs from the same call made alone.");
        }
    }
}
