using System.Globalization;

namespace StableDiffusion.Hardening;

/// <summary>The counts of the soak run and where the fixtures are.</summary>
internal sealed record SoakOptions(int Generations, int Cancellations, int Loads, int Rounds, string Fixtures, string? Output, bool NoSpinning, string[] Sections)
{
    public string TinyModel => Path.Combine(Fixtures, "tiny-sd-onnx");

    public string TinyVariantsModel => Path.Combine(Fixtures, "tiny-sd-onnx-variants");

    /// <summary>Pipeline options for the run: with <c>--no-spinning</c>, ONNX Runtime's intra-op threads sleep instead of spinning between runs.</summary>
    public Pipelines.StableDiffusionPipelineOptions PipelineOptions => NoSpinning
        ? new() { Session = new ExecutionProviders.SessionSettings { AllowSpinning = false } }
        : new();

    public static SoakOptions Parse(string[] args)
    {
        int Int(string name, int fallback) => Value(name) is { } v ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
        string? Value(string name) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
        string fixtures = Environment.GetEnvironmentVariable("SD_FIXTURES") is { Length: > 0 } fromEnvironment
            ? fromEnvironment
            : Path.Combine(RepositoryRoot(), "..", "shared", "fixtures");
        if (!Directory.Exists(Path.Combine(fixtures, "tiny-sd-onnx")))
        {
            throw new DirectoryNotFoundException($"No fixtures at '{Path.GetFullPath(fixtures)}': set SD_FIXTURES to the folder holding tiny-sd-onnx.");
        }

        return new SoakOptions(Int("--generations", 200), Int("--cancellations", 100), Int("--loads", 50), Int("--rounds", 3), Path.GetFullPath(fixtures), Value("--out"),
            args.Contains("--no-spinning"), Value("--sections")?.Split(',') ?? ["concurrency", "cancellation", "memory"]);
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "StableDiffusion.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Run from the repository (no StableDiffusion.sln above the program).");
    }
}
