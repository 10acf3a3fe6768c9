using System.Globalization;
using StableDiffusion.Hardening;

// The hardening soak run: concurrency, cancellation and memory at full counts, reported as Markdown (docs/hardening.md).
//   dotnet run -c Release --project benchmarks/StableDiffusion.Hardening -- [--generations 200] [--cancellations 100]
//       [--loads 50] [--rounds 3] [--out report.md] [--no-spinning] [--sections concurrency,cancellation,memory]
// The fixtures come from SD_FIXTURES, else ../shared/fixtures beside the repository.
SoakOptions options = SoakOptions.Parse(args);
var report = new Report();
report.Line($"# Hardening soak run, {DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture)} UTC");
report.Line();
report.Line($"{Environment.ProcessorCount} logical cores, {Environment.OSVersion}, .NET {Environment.Version}; tiny fixture models ({options.Fixtures}).");
report.Line();

report.Line(options.NoSpinning ? "ONNX Runtime's threads do not spin (SessionSettings.AllowSpinning = false)." : "The SDK's default session options (on the CPU, ONNX Runtime's threads spin between operators).");
report.Line();
if (options.Sections.Contains("concurrency"))
{
    await ConcurrencySoak.RunAsync(options, report);
}

if (options.Sections.Contains("cancellation"))
{
    await CancellationSoak.RunAsync(options, report);
}

if (options.Sections.Contains("memory"))
{
    await MemorySoak.RunAsync(options, report);
}

if (options.Output is { } output)
{
    await File.WriteAllTextAsync(output, report.ToString());
}

Console.WriteLine(report);
