using System.Globalization;

namespace StableDiffusion.Benchmarks;

/// <summary>The command line of sdbench.</summary>
internal sealed record BenchmarkOptions
{
    public const string Usage =
        "usage: sdbench --model DIR [--provider cpu|cuda] [--device-id N] [--steps 50] [--size 512] [--batch 1] [--iterations 3] [--warmup 1] " +
        "[--scheduler NAME] [--static] [--cuda-graph] [--no-iobinding] [--cudnn-search EXHAUSTIVE|HEURISTIC|DEFAULT] [--cuda-options KEY=VALUE,...] [--no-safety] [--vae-slicing] [--memory-pattern|--no-memory-pattern] " +
        "[--no-fuse-attention] [--bare-calls 30 (0: skip)] [--sync] [--spin|--no-spin] [--loras A.safetensors,B.safetensors] [--lora-switches 4] [--label NAME] [--json PATH]";

    public required string Model { get; init; }

    public string Provider { get; init; } = "cpu";

    public int DeviceId { get; init; }

    public int Steps { get; init; } = 50;

    public int Size { get; init; } = 512;

    public int Batch { get; init; } = 1;

    public int Iterations { get; init; } = 3;

    public int Warmup { get; init; } = 1;

    public string? Scheduler { get; init; }

    public bool Static { get; init; }

    public bool CudaGraph { get; init; }

    public bool? IoBinding { get; init; }

    public string CudnnSearch { get; init; } = "EXHAUSTIVE";

    /// <summary>More CUDA provider options (sdpa_kernel, prefer_nhwc, ...), over the benchmark's own.</summary>
    public IReadOnlyDictionary<string, string> CudaOptions { get; init; } = new Dictionary<string, string>();

    public bool SafetyChecker { get; init; } = true;

    /// <summary>StableDiffusionPipelineOptions.EnableVaeSlicing: decode one image per VAE run.</summary>
    public bool VaeSlicing { get; init; }

    /// <summary>SessionSettings.EnableMemoryPattern: --memory-pattern, --no-memory-pattern (refused with --cuda-graph), or the provider's default (on CUDA: only in the graph-capturing UNet).</summary>
    public bool? MemoryPattern { get; init; }

    /// <summary>Load the exports' attention as exported (<c>SessionSettings.FuseAttention = false</c>) instead of the provider's default.</summary>
    public bool NoFuseAttention { get; init; }

    public int BareCalls { get; init; } = 30;

    /// <summary>Generate on the calling thread (Generate) rather than a background one (GenerateAsync).</summary>
    public bool Sync { get; init; }

    /// <summary>SessionSettings.AllowSpinning: --spin, --no-spin, or the provider's default (spinning on the CPU).</summary>
    public bool? Spin { get; init; }

    /// <summary>LoRA files to load and switch between after the timed runs, measuring what a switch adds to the next call.</summary>
    public IReadOnlyList<string> Loras { get; init; } = [];

    public int LoraSwitches { get; init; } = 4;

    public string Label { get; init; } = "run";

    public string? Json { get; init; }

    public static BenchmarkOptions Parse(string[] args)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var flags = new HashSet<string>(StringComparer.Ordinal);
        string[] flagNames = ["--static", "--cuda-graph", "--no-iobinding", "--no-safety", "--vae-slicing", "--sync", "--spin", "--no-spin", "--no-fuse-attention", "--memory-pattern", "--no-memory-pattern"];
        for (int i = 0; i < args.Length; i++)
        {
            if (flagNames.Contains(args[i]))
            {
                flags.Add(args[i]);
            }
            else if (args[i].StartsWith("--", StringComparison.Ordinal) && i + 1 < args.Length)
            {
                values[args[i]] = args[++i];
            }
            else
            {
                throw new ArgumentException($"unexpected argument '{args[i]}'");
            }
        }

        int Int(string name, int fallback) => values.TryGetValue(name, out string? v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
        return new BenchmarkOptions
        {
            Model = values.TryGetValue("--model", out string? model) ? model : throw new ArgumentException("--model is required"),
            Provider = values.GetValueOrDefault("--provider", "cpu").ToLowerInvariant(),
            DeviceId = Int("--device-id", 0),
            Steps = Int("--steps", 50),
            Size = Int("--size", 512),
            Batch = Int("--batch", 1),
            Iterations = Int("--iterations", 3),
            Warmup = Int("--warmup", 1),
            Scheduler = values.GetValueOrDefault("--scheduler"),
            Static = flags.Contains("--static") || flags.Contains("--cuda-graph"),
            CudaGraph = flags.Contains("--cuda-graph"),
            IoBinding = flags.Contains("--no-iobinding") ? false : null,
            CudnnSearch = values.GetValueOrDefault("--cudnn-search", "EXHAUSTIVE"),
            CudaOptions = values.TryGetValue("--cuda-options", out string? cudaOptions) ? ParsePairs(cudaOptions, "--cuda-options") : new Dictionary<string, string>(),
            SafetyChecker = !flags.Contains("--no-safety"),
            VaeSlicing = flags.Contains("--vae-slicing"),
            MemoryPattern = flags.Contains("--memory-pattern") ? true : flags.Contains("--no-memory-pattern") ? false : null,
            Sync = flags.Contains("--sync"),
            Spin = flags.Contains("--spin") ? true : flags.Contains("--no-spin") ? false : null,
            Loras = values.TryGetValue("--loras", out string? loras) ? loras.Split(',', StringSplitOptions.RemoveEmptyEntries) : [],
            LoraSwitches = Int("--lora-switches", 4),
            NoFuseAttention = flags.Contains("--no-fuse-attention"),
            BareCalls = Int("--bare-calls", 30),
            Label = values.GetValueOrDefault("--label", "run"),
            Json = values.GetValueOrDefault("--json"),
        };
    }

    private static Dictionary<string, string> ParsePairs(string text, string option)
    {
        var pairs = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string pair in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw new ArgumentException($"{option}: '{pair}' is not KEY=VALUE");
            }

            pairs[pair[..equals]] = pair[(equals + 1)..];
        }

        return pairs;
    }
}
