using StableDiffusion.Core.Tests.Hardening.Drills;
using StableDiffusion.ExecutionProviders;
using StableDiffusion.Pipelines;

namespace StableDiffusion.Hardening;

/// <summary>N generations at once on one pipeline, compared byte for byte with the same requests one by one, and the throughput.</summary>
internal static class ConcurrencySoak
{
    private const int Steps = 10;

    public static async Task RunAsync(SoakOptions options, Report report)
    {
        report.Line("## Concurrency");
        report.Line();
        report.Line($"Requests of {Steps} steps at 64x64 (seeds, prompts, guidance on and off, every third with Euler a), {options.Rounds} rounds per N; " +
            "each concurrent result compared byte for byte (image tensor, 8-bit images, latents) with the same request run alone.");
        report.Line();
        (string Name, SessionSettings Settings)[] configurations =
        [
            ("ONNX Runtime's default threads", options.PipelineOptions.Session),
            ("one intra-op thread per session", options.PipelineOptions.Session with { IntraOpNumThreads = 1 }),
        ];
        foreach ((string name, SessionSettings settings) in configurations)
        {
            using StableDiffusionPipeline pipeline = StableDiffusionPipeline.FromPretrained(options.TinyModel, options.PipelineOptions with { Session = settings });
            using (pipeline.Generate(new TextToImageRequest("warm up") { Seed = 1, NumInferenceSteps = 2, Height = 64, Width = 64 }))
            {
            }

            var rows = new List<string[]>();
            foreach (int n in new[] { 1, 2, 4, 8 })
            {
                var outcomes = new List<ConcurrencyOutcome>();
                // One uncounted round warms up the schedulers and buffers of this size.
                await ConcurrencyDrill.RunAsync(pipeline, ConcurrencyDrill.Requests(pipeline, n, Steps), TimeSpan.FromMinutes(10), CancellationToken.None);
                for (int round = 0; round < options.Rounds; round++)
                {
                    outcomes.Add(await ConcurrencyDrill.RunAsync(pipeline, ConcurrencyDrill.Requests(pipeline, n, Steps), TimeSpan.FromMinutes(10), CancellationToken.None));
                }

                int images = n * options.Rounds;
                double sequential = images / outcomes.Sum(o => o.Sequential.TotalSeconds), concurrent = images / outcomes.Sum(o => o.Concurrent.TotalSeconds);
                rows.Add([Report.Number(n, "D"), Report.Number(images, "D"), Report.Number(outcomes.Sum(o => o.Mismatches), "D"),
                    Report.Number(sequential), Report.Number(concurrent), Report.Number(concurrent / sequential) + "x"]);
            }

            report.Line($"**{name}**");
            report.Line();
            report.Table(["N at once", "images", "not byte-identical", "one by one (images/s)", "at once (images/s)", "speed-up"], rows);
        }
    }
}
