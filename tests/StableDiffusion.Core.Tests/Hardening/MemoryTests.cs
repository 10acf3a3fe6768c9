using StableDiffusion.Core.Tests.Hardening.Drills;
using StableDiffusion.Pipelines;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.Hardening;

/// <summary>Memory tests run alone: other tests allocating in parallel would blur their figures.</summary>
[CollectionDefinition(nameof(MemoryCollection), DisableParallelization = true)]
public sealed class MemoryCollection;

/// <summary>
/// Many generations, and many loads and disposals, leave the managed heap and the resident set (native memory included)
/// where they were, within noise. A small count here with generous bounds; the hardening benchmark runs 200 generations
/// and reports both series (docs/hardening.md).
/// </summary>
[Trait("Category", "Hardening")]
[Collection(nameof(MemoryCollection))]
public sealed class MemoryTests
{
    private const long Mebibyte = 1024 * 1024;

    [Fact]
    public async Task ManyGenerations_GrowNeitherTheManagedHeapNorTheResidentSet()
    {
        Fixtures.Require();
        CancellationToken ct = TestContext.Current.CancellationToken;
        using StableDiffusionPipeline pipeline = await StableDiffusionPipeline.FromPretrainedAsync(Fixtures.TinyModel, cancellationToken: ct);
        var request = new TextToImageRequest("a lighthouse on a cliff") { NumInferenceSteps = 3, Height = 64, Width = 64 };
        async Task GenerateAsync(int i)
        {
            using GenerationResult result = await pipeline.GenerateAsync(request with { Seed = (ulong)i }, ct);
        }

        // Warm up: ONNX Runtime's arenas and the JIT settle in the first few calls.
        await MemoryDrill.RunAsync(10, 10, GenerateAsync, ct);
        MemorySeries series = await MemoryDrill.RunAsync(40, 5, GenerateAsync, ct);

        SeriesSummary managed = series.Managed(), resident = series.Resident();
        TestContext.Current.TestOutputHelper?.WriteLine($"managed heap: {managed.ToMebibytes()}\nresident set: {resident.ToMebibytes()}");
        // A leak of one result per call (its 48 KiB image tensor, 8-bit images and latents) would add over 4 MiB here.
        Assert.True(managed.Max - managed.First < 2 * Mebibyte, $"The managed heap grew: {managed.ToMebibytes()}");
        Assert.True(resident.Last - resident.First < 32 * Mebibyte, $"The resident set grew: {resident.ToMebibytes()}");
    }

    [Fact]
    public async Task LoadingAndDisposingPipelines_GivesTheirMemoryBack()
    {
        Fixtures.Require();
        CancellationToken ct = TestContext.Current.CancellationToken;
        var request = new TextToImageRequest("a lighthouse") { Seed = 1, NumInferenceSteps = 2, Height = 64, Width = 64 };
        // On a thread of its own, which ends with the iteration: no stale stack slot can keep the disposed pipeline reachable.
        Task LoadGenerateAndDisposeAsync(int i) => MemoryDrill.OnOwnThread(() =>
        {
            using StableDiffusionPipeline pipeline = StableDiffusionPipeline.FromPretrained(Fixtures.TinyModel, cancellationToken: ct);
            using GenerationResult result = pipeline.Generate(request, cancellationToken: ct);
        });

        // Warm up until the native allocator has its per-thread arenas (each load starts ONNX Runtime threads).
        await MemoryDrill.RunAsync(8, 8, LoadGenerateAndDisposeAsync, ct);
        MemorySeries series = await MemoryDrill.RunAsync(12, 1, LoadGenerateAndDisposeAsync, ct);

        // A pipeline that is not released holds at least its graphs and weights in native memory (and its tokenizer,
        // about 11 MiB, in the managed heap): a leak would add that much per load.
        long modelBytes = Directory.EnumerateFiles(Fixtures.TinyModel, "*", SearchOption.AllDirectories)
            .Where(f => f.EndsWith(".onnx", StringComparison.Ordinal) || f.EndsWith(".pb", StringComparison.Ordinal)).Sum(f => new FileInfo(f).Length);
        SeriesSummary resident = series.Resident(), managed = series.Managed();
        TestContext.Current.TestOutputHelper?.WriteLine($"resident set: {resident.ToMebibytes()}\nmanaged heap: {managed.ToMebibytes()}");
        Assert.True(resident.Slope < modelBytes, $"The resident set grows by {resident.Slope / Mebibyte:F1} MiB per load ({modelBytes / (double)Mebibyte:F1} MiB of weights): {resident.ToMebibytes()}");
        Assert.True(managed.Slope < 2 * Mebibyte, $"The managed heap grows by {managed.Slope / Mebibyte:F1} MiB per load: {managed.ToMebibytes()}");
    }
}
