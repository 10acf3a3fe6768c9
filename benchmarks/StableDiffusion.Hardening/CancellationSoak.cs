using StableDiffusion.Core.Tests.Hardening.Drills;
using StableDiffusion.Imaging;
using StableDiffusion.Pipelines;

namespace StableDiffusion.Hardening;

/// <summary>Cancellations at random points, their outcomes and latencies, and the pipeline's correctness after each.</summary>
internal static class CancellationSoak
{
    private const string Download = "Download";

    public static async Task RunAsync(SoakOptions options, Report report)
    {
        report.Line("## Cancellation");
        report.Line();
        var random = new Random(2026);
        using var pipeline = StableDiffusionImg2ImgPipeline.FromPretrained(options.TinyVariantsModel, options.PipelineOptions);
        RgbImage picture = Picture(64);
        CancellationDrill drill = await CancellationDrill.CreateAsync(pipeline,
            new Img2ImgRequest("a lighthouse at dusk", picture) { Seed = 21, NumInferenceSteps = 10, Strength = 0.8 }, CancellationToken.None);
        await using DownloadCancellationDrill download = await DownloadCancellationDrill.StartAsync(options.TinyModel, chunkBytes: 256 * 1024, pause: TimeSpan.FromMilliseconds(5));
        TimeSpan loadTime = await TimeFullLoadAsync(download);

        // Warm up every cancellation path once (the first exception through each is slowed by the JIT), uncounted.
        foreach (CancellationPoint point in Enum.GetValues<CancellationPoint>())
        {
            foreach (CancellationTiming timing in Enum.GetValues<CancellationTiming>())
            {
                await drill.RunOnceAsync(point, random, CancellationToken.None, timing);
            }
        }

        await download.RunOnceAsync(loadTime / 3);

        string[] points = [.. Enum.GetNames<CancellationPoint>(), Download];
        var outcomes = new List<CancellationOutcome>();
        var downloads = new List<DownloadCancellationOutcome>();
        for (int i = 0; i < options.Cancellations; i++)
        {
            string point = points[random.Next(points.Length)];
            if (point == Download)
            {
                if (downloads.Count % 2 == 0)
                {
                    download.ResetCache();
                }

                downloads.Add(await download.RunOnceAsync(loadTime * random.NextDouble()));
            }
            else
            {
                outcomes.Add(await drill.RunOnceAsync(Enum.Parse<CancellationPoint>(point), random, CancellationToken.None));
            }
        }

        bool finalLoadCorrect = await FinalLoadIsCorrectAsync(download, options);
        report.Line($"{options.Cancellations} cancellations at random points: image-to-image on tiny-sd-onnx-variants (64x64, 10 steps, strength 0.8: " +
            $"{drill.ReferenceTimings.UNetCalls} UNet calls of {Report.Ms(drill.UNetCall)} ms on average), cancelled either from the stage's progress report or from " +
            $"a timer thread after a random part of the stage's reference duration; downloads of tiny-sd-onnx from a fake Hub over a slow link " +
            $"(a full load takes {Report.Ms(loadTime)} ms), cancelled after a random part of that.");
        report.Line();
        var rows = new List<string[]>();
        foreach (var group in outcomes.GroupBy(o => (o.Point, o.Timing)).OrderBy(g => g.Key))
        {
            string timing = group.Key.Point == CancellationPoint.BeforeStart ? string.Empty : group.Key.Timing == CancellationTiming.AtStageStart ? ", at the stage's start" : ", during its model call";
            rows.Add([group.Key.Point + timing, Count(group), Count(group.Where(o => o.Cancelled)), Count(group.Where(o => o.CancelledAfterTheLastCheck)),
                Count(group.Where(o => !o.Correct)), Count(group.Where(o => o.NextGenerationIdentical)), LatencySummary.Of(group.Where(o => o.Cancelled).Select(o => o.Latency)).ToString()]);
        }

        rows.Add([Download, Count(downloads), Count(downloads.Where(d => d.Cancelled)), Count(downloads.Where(d => d.Outcome == "completed")),
            Count(downloads.Where(d => d.Outcome is not ("cancelled" or "completed"))), finalLoadCorrect ? "final load identical" : "FINAL LOAD DIFFERS",
            LatencySummary.Of(downloads.Where(d => d.Cancelled).Select(d => d.Latency)).ToString()]);
        report.Table(["point", "tries", "OperationCanceledException", "completed (cancelled after the last check)", "anything else", "next generation identical", "latency Cancel() to exception"], rows);
        LatencySummary all = LatencySummary.Of(outcomes.Where(o => o.Cancelled).Select(o => o.Latency));
        report.Line($"Generation cancellations, all points: {all}; the p95 is {Report.Number(all.P95 / drill.UNetCall)} and the maximum " +
            $"{Report.Number(all.Max / drill.UNetCall)} UNet calls. Cache problems after cancelled downloads (partial or wrong blobs, temporary files left, " +
            $"snapshot entries without their file): {downloads.Sum(d => d.CacheProblems.Count)}.");
        foreach (string other in outcomes.Where(o => !o.Correct).Select(o => o.Outcome).Concat(downloads.Where(d => d.Outcome is not ("cancelled" or "completed")).Select(d => d.Outcome)).Distinct())
        {
            report.Line($"- unexpected: {other}");
        }

        report.Line();
        await InsideLongUNetCallsAsync(options, report, random);
    }

    /// <summary>Cancels inside UNet calls long enough that the timer thread's wake-up does not matter (256x256).</summary>
    private static async Task InsideLongUNetCallsAsync(SoakOptions options, Report report, Random random)
    {
        int count = Math.Max(5, options.Cancellations / 5);
        using var pipeline = StableDiffusionImg2ImgPipeline.FromPretrained(options.TinyVariantsModel, options.PipelineOptions);
        RgbImage picture = Picture(256);
        CancellationDrill drill = await CancellationDrill.CreateAsync(pipeline,
            new Img2ImgRequest("a lighthouse at dusk", picture) { Seed = 21, NumInferenceSteps = 4, Strength = 1 }, CancellationToken.None);
        var outcomes = new List<CancellationOutcome>();
        for (int i = 0; i < count; i++)
        {
            outcomes.Add(await drill.RunOnceAsync(CancellationPoint.Denoising, random, CancellationToken.None, CancellationTiming.DuringModelCall));
        }

        LatencySummary latency = LatencySummary.Of(outcomes.Where(o => o.Cancelled).Select(o => o.Latency));
        report.Line($"Inside long UNet calls (256x256, {Report.Ms(drill.UNetCall)} ms per call), {count} cancellations from a timer thread partway into a " +
            $"random step: {outcomes.Count(o => o.Cancelled)} OperationCanceledException, {outcomes.Count(o => o.NextGenerationIdentical)} next generations identical; " +
            $"latency {latency}: the maximum is {Report.Number(latency.Max / drill.UNetCall)} of a UNet call (ONNX Runtime's RunOptions.Terminate stops the running graph).");
        report.Line();
    }

    private static async Task<TimeSpan> TimeFullLoadAsync(DownloadCancellationDrill download)
    {
        download.ResetCache();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        using (await download.LoadAsync(CancellationToken.None))
        {
        }

        TimeSpan elapsed = watch.Elapsed;
        download.ResetCache();
        return elapsed;
    }

    private static async Task<bool> FinalLoadIsCorrectAsync(DownloadCancellationDrill download, SoakOptions options)
    {
        var request = new TextToImageRequest("a lighthouse") { Seed = 8, NumInferenceSteps = 4, Height = 64, Width = 64 };
        using StableDiffusionPipeline downloaded = await download.LoadAsync(CancellationToken.None);
        using StableDiffusionPipeline local = StableDiffusionPipeline.FromPretrained(options.TinyModel);
        using GenerationResult expected = local.Generate(request);
        using GenerationResult actual = downloaded.Generate(request);
        return GenerationBytes.Of(expected).AsSpan().SequenceEqual(GenerationBytes.Of(actual)) && download.CacheProblems().Count == 0;
    }

    private static string Count<T>(IEnumerable<T> items) => Report.Number(items.Count(), "D");

    private static RgbImage Picture(int size)
    {
        var rgb = new byte[size * size * 3];
        for (int y = 0; y < size; y++)
        {
            for (int x = 0; x < size; x++)
            {
                int o = ((y * size) + x) * 3;
                (rgb[o], rgb[o + 1], rgb[o + 2]) = ((byte)(255 * x / (size - 1)), (byte)(255 * y / (size - 1)), (byte)((x ^ y) & 0xFF));
            }
        }

        return RgbImage.FromRgb(rgb, size, size);
    }
}
