using System.Globalization;
using System.Text;
using System.Text.Json;

namespace StableDiffusion.Benchmarks;

/// <summary>One generation's wall time and stages, in seconds.</summary>
internal sealed record RunTimings(double Total, double PerImage, double PromptEncoding, double Denoising, double UNet, int UNetCalls, double Scheduler,
    double Decoding, double SafetyChecking, double LoopOverhead);

/// <summary>What sdbench measured, written as JSON.</summary>
internal sealed class BenchmarkReport
{
    public static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    public string Label { get; init; } = "";

    public string Model { get; init; } = "";

    public string Provider { get; init; } = "";

    /// <summary>The execution provider's options as the benchmark gave them (the provider family may add its own, such as the device).</summary>
    public IReadOnlyDictionary<string, string> ProviderOptions { get; set; } = new Dictionary<string, string>();

    public int Steps { get; init; }

    public int Size { get; init; }

    public int Batch { get; init; }

    /// <summary>Whether attention was left to the provider's default rewrite (false: <c>--no-fuse-attention</c>).</summary>
    public bool FuseAttention { get; init; }

    public bool StaticShape { get; init; }

    public bool CudaGraph { get; init; }

    public bool VaeSlicing { get; init; }

    /// <summary>SessionSettings.EnableMemoryPattern as given (null: the provider's default).</summary>
    public bool? MemoryPattern { get; init; }

    public bool? IoBinding { get; init; }

    public bool UNetDeviceBinding { get; set; }

    public bool UNetCudaGraph { get; set; }

    public string OrtVersion { get; init; } = "";

    public string Date { get; init; } = "";

    public string Machine { get; init; } = "";

    public double LoadSeconds { get; set; }

    /// <summary>Each component's load time as the SDK logs it, in the order they finished (the UNet loads beside the others).</summary>
    public List<KeyValuePair<string, double>> ComponentLoadMilliseconds { get; set; } = [];

    public List<double> WarmupSeconds { get; } = [];

    /// <summary>From process start to the end of the first generation (loading and warm-up included).</summary>
    public double? TimeToFirstImageSeconds { get; set; }

    public List<RunTimings> Runs { get; } = [];

    public double BareUNetMilliseconds { get; set; }

    /// <summary>One image's <c>VaeDecoderModel.Decode</c> alone (BareStages).</summary>
    public double BareDecodeMilliseconds { get; set; }

    /// <summary>One image's CLIP pre-processing alone, the host's part of the safety check.</summary>
    public double SafetyPreprocessMilliseconds { get; set; }

    /// <summary>One image's <c>SafetyChecker.Check</c> alone.</summary>
    public double BareSafetyCheckMilliseconds { get; set; }

    /// <summary>Seconds each LoRA file took to load (read and match; no session is rebuilt yet).</summary>
    public List<double> LoraLoadSeconds { get; } = [];

    /// <summary>A one-step generation without a switch, the baseline of <see cref="LoraSwitchSeconds"/>.</summary>
    public double? OneStepSeconds { get; set; }

    /// <summary>Per switch: SetAdapters to the other LoRA, then a one-step generation (which rebuilds the changed sessions).</summary>
    public List<double> LoraSwitchSeconds { get; } = [];

    /// <summary>The process's peak resident memory (VmHWM) after loading, warm-up and the timed runs, in MiB; null where unknown.</summary>
    public double? PeakResidentMiB { get; set; }

    /// <summary>GPU memory in use on the device, in MiB: after loading, as each stage of the first generation starts, when it
    /// completes, and after the timed runs; null on the CPU.</summary>
    public List<KeyValuePair<string, double>>? DeviceMemoryMiB { get; set; }

    /// <summary>Medians over the timed runs.</summary>
    public RunTimings? Median { get; private set; }

    /// <summary>Median seconds per image.</summary>
    public double SecondsPerImage { get; private set; }

    /// <summary>What ONNX Runtime alone needs: UNet calls x its bare call time, plus the VAE decode.</summary>
    public double OrtFloorSeconds { get; private set; }

    /// <summary>Median total over <see cref="OrtFloorSeconds"/>: 1.0 means the pipeline adds nothing.</summary>
    public double RatioToOrt { get; private set; }

    public string? Error { get; set; }

    public void Summarise()
    {
        Median = new RunTimings(
            MedianOf(Runs.Select(r => r.Total)), MedianOf(Runs.Select(r => r.PerImage)), MedianOf(Runs.Select(r => r.PromptEncoding)),
            MedianOf(Runs.Select(r => r.Denoising)), MedianOf(Runs.Select(r => r.UNet)), Runs[0].UNetCalls,
            MedianOf(Runs.Select(r => r.Scheduler)), MedianOf(Runs.Select(r => r.Decoding)), MedianOf(Runs.Select(r => r.SafetyChecking)),
            MedianOf(Runs.Select(r => r.LoopOverhead)));
        SecondsPerImage = Median.PerImage;
        OrtFloorSeconds = (Median.UNetCalls * BareUNetMilliseconds / 1000) + Median.Decoding;
        RatioToOrt = Median.Total / OrtFloorSeconds;
    }

    /// <summary>The middle value once sorted (the upper one of the two middles for an even count).</summary>
    public static double MedianOf(IEnumerable<double> values)
    {
        double[] sorted = [.. values.Order()];
        return sorted[sorted.Length / 2];
    }

    public string Table()
    {
        RunTimings m = Median!;
        var text = new StringBuilder();
        void Row(string what, double seconds) => text.AppendLine(CultureInfo.InvariantCulture, $"| {what,-34} | {seconds * 1000,10:0.0} ms |");
        text.AppendLine(CultureInfo.InvariantCulture, $"[{Label}] {Provider}, {Size}x{Size}, batch {Batch}, {Steps} steps, static {StaticShape}, CUDA graph {UNetCudaGraph}, device binding {UNetDeviceBinding}, ORT {OrtVersion}");
        text.AppendLine("| stage                              |       time |");
        text.AppendLine("| ---------------------------------- | ---------: |");
        Row("total per call (median)", m.Total);
        Row("per image", m.PerImage);
        Row("prompt encoding", m.PromptEncoding);
        Row($"denoising ({m.UNetCalls} UNet calls)", m.Denoising);
        Row("  inside the UNet", m.UNet);
        Row("  UNet per call", m.UNet / m.UNetCalls);
        Row("  scheduler", m.Scheduler);
        Row("  rest of the loop (copies, guidance)", m.LoopOverhead);
        Row("VAE decode", m.Decoding);
        Row("safety checker", m.SafetyChecking);
        Row("bare ORT UNet call", BareUNetMilliseconds / 1000);
        Row("bare decode, one image", BareDecodeMilliseconds / 1000);
        Row("bare safety check, one image", BareSafetyCheckMilliseconds / 1000);
        Row("  its CLIP pre-processing", SafetyPreprocessMilliseconds / 1000);
        Row("ORT floor (calls x bare + decode)", OrtFloorSeconds);
        text.AppendLine(CultureInfo.InvariantCulture, $"peak RSS (VmHWM): {PeakResidentMiB:0} MiB; fused attention {FuseAttention}");
        if (DeviceMemoryMiB is { Count: > 0 } memory)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"GPU memory in use (MiB): {string.Join(", ", memory.Select(m => $"{m.Key} {m.Value:0}"))}");
        }

        text.AppendLine(CultureInfo.InvariantCulture, $"ratio to ORT floor: {RatioToOrt:0.000}; load {LoadSeconds:0.00} s ({string.Join(", ", ComponentLoadMilliseconds.Select(c => string.Create(CultureInfo.InvariantCulture, $"{c.Key} {c.Value:0} ms")))}); warm-up {string.Join(", ", WarmupSeconds.Select(w => w.ToString("0.00", CultureInfo.InvariantCulture)))} s");
        return text.ToString();
    }
}
