using System.Globalization;
using StableDiffusion.Core.Tests.Hardening.Drills;
using StableDiffusion.Pipelines;

namespace StableDiffusion.Hardening;

/// <summary>The managed heap and the resident set over many generations, and over many loads and disposals.</summary>
internal static class MemorySoak
{
    public static async Task RunAsync(SoakOptions options, Report report)
    {
        report.Line("## Memory");
        report.Line();
        report.Line("Each sample follows a full, compacting garbage collection (finalizers run). Managed heap: GC.GetTotalMemory; resident set: " +
            "Environment.WorkingSet (VmRSS, native memory included). Slopes are least-squares, per iteration.");
        report.Line();

        using (StableDiffusionPipeline pipeline = StableDiffusionPipeline.FromPretrained(options.TinyModel, options.PipelineOptions))
        {
            var request = new TextToImageRequest("a lighthouse on a cliff") { NumInferenceSteps = 10, Height = 64, Width = 64 };
            async Task GenerateAsync(int i)
            {
                using GenerationResult result = await pipeline.GenerateAsync(request with { Seed = (ulong)i });
            }

            await MemoryDrill.RunAsync(10, 10, GenerateAsync, CancellationToken.None);
            MemorySeries generations = await MemoryDrill.RunAsync(options.Generations, 10, GenerateAsync, CancellationToken.None);
            Summarise(report, $"{options.Generations} consecutive generations (64x64, 10 steps, safety checker on) on one pipeline, after 10 to warm up", "generation", generations);
        }

        Task LoadGenerateAndDisposeAsync(int i) => MemoryDrill.OnOwnThread(() =>
        {
            using StableDiffusionPipeline pipeline = StableDiffusionPipeline.FromPretrained(options.TinyModel, options.PipelineOptions);
            using GenerationResult result = pipeline.Generate(new TextToImageRequest("a lighthouse") { Seed = 1, NumInferenceSteps = 2, Height = 64, Width = 64 });
        });
        await MemoryDrill.RunAsync(8, 8, LoadGenerateAndDisposeAsync, CancellationToken.None);
        MemorySeries loads = await MemoryDrill.RunAsync(options.Loads, 5, LoadGenerateAndDisposeAsync, CancellationToken.None);
        Summarise(report, $"{options.Loads} pipelines loaded, used once and disposed, after 8 to warm up (one held pipeline takes about 11 MiB managed and 25 MiB resident)", "load", loads);
    }

    private static void Summarise(Report report, string title, string unit, MemorySeries series)
    {
        report.Line($"**{title}**");
        report.Line();
        SeriesSummary managed = series.Managed(), resident = series.Resident();
        report.Table(["series", "first (MiB)", "last (MiB)", "min (MiB)", "max (MiB)", $"slope (KiB per {unit})"],
        [
            ["managed heap", Report.MiB(managed.First), Report.MiB(managed.Last), Report.MiB(managed.Min), Report.MiB(managed.Max), Report.Number(managed.Slope / 1024)],
            ["resident set", Report.MiB(resident.First), Report.MiB(resident.Last), Report.MiB(resident.Min), Report.MiB(resident.Max), Report.Number(resident.Slope / 1024)],
        ]);
        report.Line("Samples (" + unit + ": managed / resident MiB): " + string.Join(", ",
            series.Samples.Select(s => string.Create(CultureInfo.InvariantCulture, $"{s.Iteration}: {Report.MiB(s.ManagedBytes)} / {Report.MiB(s.ResidentBytes)}"))));
        report.Line();
    }
}
