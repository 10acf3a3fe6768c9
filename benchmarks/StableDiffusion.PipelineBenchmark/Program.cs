using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using StableDiffusion.Benchmarks;
using StableDiffusion.ExecutionProviders;
using StableDiffusion.Pipelines;
using StableDiffusion.Schedulers;

// sdbench: one configuration per run. Loads the model, warms up, times whole generations and their stages, then times
// ONNX Runtime's own UNet call on the same session (no pipeline around it), and prints and writes the comparison.
BenchmarkOptions options;
try
{
    options = BenchmarkOptions.Parse(args);
}
catch (ArgumentException ex)
{
    Console.Error.WriteLine($"error: {ex.Message}\n{BenchmarkOptions.Usage}");
    return 2;
}

var report = new BenchmarkReport { Label = options.Label, Model = options.Model, Provider = options.Provider, Steps = options.Steps, Size = options.Size,
    Batch = options.Batch, FuseAttention = !options.NoFuseAttention, StaticShape = options.Static, CudaGraph = options.CudaGraph, VaeSlicing = options.VaeSlicing, MemoryPattern = options.MemoryPattern, IoBinding = options.IoBinding, OrtVersion = OrtEnv.Instance().GetVersionString(),
    Date = DateTimeOffset.UtcNow.ToString("u", CultureInfo.InvariantCulture), Machine = $"{Environment.ProcessorCount} cores, {Environment.OSVersion}" };
try
{
    ExecutionProvider provider = options.Provider == "cuda"
        ? ExecutionProvider.Cuda(options.DeviceId, Cuda(options))
        : ExecutionProvider.Cpu;
    report.ProviderOptions = provider.Options;
    // The CUDA context is made here (cudaSetDevice), before any session, so that the first reading is the context alone.
    DeviceMemoryByStage? memory = options.Provider == "cuda" ? DeviceMemoryByStage.TryCreate(options.DeviceId) : null;
    memory?.Read("CUDA context");
    var loadLog = new ComponentLoadLog(memory);
    var pipelineOptions = new StableDiffusionPipelineOptions
    {
        Session = new SessionSettings { ExecutionProvider = provider, IoBinding = options.IoBinding, AllowSpinning = options.Spin, FuseAttention = options.NoFuseAttention ? false : null, EnableMemoryPattern = options.MemoryPattern },
        StaticShape = options.Static ? new StaticShapeOptions { Height = options.Size, Width = options.Size, ImagesPerCall = options.Batch } : null,
        ComponentSessions = options.CudaGraph
            ? new Dictionary<string, SessionSettings>
            {
                ["unet"] = new() { ExecutionProvider = provider with { Options = new Dictionary<string, string>(provider.Options) { ["enable_cuda_graph"] = "1" } }, IoBinding = true, EnableMemoryPattern = options.MemoryPattern },
            }
            : new Dictionary<string, SessionSettings>(),
        EnableSafetyChecker = options.SafetyChecker,
        EnableVaeSlicing = options.VaeSlicing,
        LoggerFactory = loadLog, // each component's load time, and a memory reading after it
    };

    var load = Stopwatch.StartNew();
    using StableDiffusionPipeline pipe = await StableDiffusionPipeline.FromPretrainedAsync(options.Model, pipelineOptions);
    report.LoadSeconds = load.Elapsed.TotalSeconds;
    report.ComponentLoadMilliseconds = loadLog.Milliseconds;
    report.UNetDeviceBinding = pipe.UNet.UsesDeviceBinding;
    report.UNetCudaGraph = pipe.UNet.UsesCudaGraph;
    memory?.Read("after load");
    Console.WriteLine($"[{options.Label}] loaded in {report.LoadSeconds:0.00} s (UNet {pipe.UNet.SampleType}, device binding {pipe.UNet.UsesDeviceBinding}, CUDA graph {pipe.UNet.UsesCudaGraph})");

    IScheduler scheduler = options.Scheduler is { } name ? SchedulerFactory.Create(name, pipe.Scheduler.Config) : pipe.Scheduler;
    var request = new TextToImageRequest("a photo of an astronaut riding a horse on mars")
    {
        Seed = 42, NumInferenceSteps = options.Steps, Height = options.Size, Width = options.Size, NumImagesPerPrompt = options.Batch, Scheduler = scheduler,
    };

    for (int i = 0; i < options.Warmup; i++)
    {
        var warm = Stopwatch.StartNew();
        // The first generation reads the device memory between its stages (where the memory grows first).
        IProgress<GenerationProgress>? progress = i == 0 ? memory : null;
        using GenerationResult result = options.Sync ? pipe.Generate(request, progress) : await pipe.GenerateAsync(request, progress);
        report.WarmupSeconds.Add(warm.Elapsed.TotalSeconds);
        if (i == 0)
        {
            // eng/bench/side_by_side.py times the first image from process start by this line.
            report.TimeToFirstImageSeconds = (DateTime.Now - Process.GetCurrentProcess().StartTime).TotalSeconds;
            Console.WriteLine("FIRST_IMAGE");
        }
    }

    for (int i = 0; i < options.Iterations; i++)
    {
        var timer = Stopwatch.StartNew();
        using GenerationResult result = options.Sync ? pipe.Generate(request) : await pipe.GenerateAsync(request);
        double total = timer.Elapsed.TotalSeconds;
        GenerationTimings t = result.Timings;
        report.Runs.Add(new RunTimings(total, total / options.Batch, t.PromptEncoding.TotalSeconds, t.Denoising.TotalSeconds, t.UNet.TotalSeconds, t.UNetCalls,
            t.Scheduler.TotalSeconds, t.Decoding.TotalSeconds, t.SafetyChecking.TotalSeconds,
            t.Denoising.TotalSeconds - t.UNet.TotalSeconds - t.Scheduler.TotalSeconds));
        Console.WriteLine($"[{options.Label}] run {i + 1}: {total:0.000} s ({t.UNetCalls} UNet calls, {t.UNet.TotalMilliseconds / t.UNetCalls:0.00} ms each)");
    }

    memory?.Read("after the timed runs");
    report.DeviceMemoryMiB = memory?.Readings;
    report.PeakResidentMiB = OperatingSystem.IsLinux() ? ProcessStatus.MiB("VmHWM") : null;
    report.BareUNetMilliseconds = options.BareCalls > 0 ? BareUNet.Measure(pipe.UNet.Session, options, pipe.UNet.UsesCudaGraph) : 0;
    if (options.BareCalls > 0)
    {
        (report.BareDecodeMilliseconds, report.SafetyPreprocessMilliseconds, report.BareSafetyCheckMilliseconds) = BareStages.Measure(pipe, options);
    }
    if (options.Loras.Count > 0)
    {
        // A switch rebuilds the sessions whose weights change at the next call: time a one-step call after each switch
        // against one without (the difference is what a user waits extra when changing LoRA between images).
        TextToImageRequest oneStep = request with { NumInferenceSteps = 1 };
        var names = new List<string>();
        foreach (string file in options.Loras)
        {
            var loading = Stopwatch.StartNew();
            names.Add(pipe.LoadLoraWeights(file, Path.GetFileNameWithoutExtension(file)));
            report.LoraLoadSeconds.Add(loading.Elapsed.TotalSeconds);
        }

        pipe.SetAdapters([names[0]]);
        using (pipe.Generate(oneStep))
        {
        }

        var baseline = Stopwatch.StartNew();
        using (pipe.Generate(oneStep))
        {
            report.OneStepSeconds = baseline.Elapsed.TotalSeconds;
        }

        for (int i = 1; i <= options.LoraSwitches; i++)
        {
            var switching = Stopwatch.StartNew();
            pipe.SetAdapters([names[i % names.Count]]);
            using GenerationResult result = pipe.Generate(oneStep);
            report.LoraSwitchSeconds.Add(switching.Elapsed.TotalSeconds);
            Console.WriteLine($"[{options.Label}] switch to {names[i % names.Count]} + one step: {report.LoraSwitchSeconds[^1]:0.000} s (one step alone {report.OneStepSeconds:0.000} s)");
        }
    }

    report.Summarise();
    Console.WriteLine(report.Table());
}
catch (Exception ex) when (ex is not OutOfMemoryException)
{
    report.Error = ex.ToString();
    Console.Error.WriteLine($"[{options.Label}] failed: {ex}");
}

if (options.Json is { } json)
{
    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(json))!);
    File.WriteAllText(json, JsonSerializer.Serialize(report, BenchmarkReport.JsonOptions));
}

return report.Error is null ? 0 : 1;

static Dictionary<string, string> Cuda(BenchmarkOptions options)
{
    var cuda = new Dictionary<string, string>
    {
        ["cudnn_conv_algo_search"] = options.CudnnSearch,
        ["cudnn_conv_use_max_workspace"] = "1",
        ["do_copy_in_default_stream"] = "1",
    };
    foreach ((string key, string value) in options.CudaOptions)
    {
        cuda[key] = value;
    }

    return cuda;
}
