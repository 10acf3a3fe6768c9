using System.Globalization;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Spectre.Console;
using StableDiffusion.ExecutionProviders;
using StableDiffusion.Hub;
using StableDiffusion.Models;
using StableDiffusion.Pipelines;
using StableDiffusion.Schedulers;

namespace StableDiffusion.Cli;

/// <summary>Runs one command line: load (downloading if needed), generate with a live progress bar, write the PNGs, summarise.</summary>
internal sealed class Generator(CliSettings settings, TextWriter output, TextWriter error)
{
    private readonly IAnsiConsole _console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output) });

    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        // The seed is fixed up front so that the file names and the PNG metadata can name it.
        ulong seed = settings.Seed ?? BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(sizeof(ulong)));
        IReadOnlyList<string> paths = OutputPaths(seed);
        if (!settings.Overwrite && paths.FirstOrDefault(File.Exists) is { } existing)
        {
            await error.WriteLineAsync($"error: '{existing}' already exists; pass --overwrite to replace it or choose another --output.").ConfigureAwait(false);
            return CliCommand.UsageError;
        }

        using ILoggerFactory loggerFactory = LoggerFactory.Create(logging => logging
            .AddSimpleConsole(console => console.SingleLine = true)
            .SetMinimumLevel(settings.Verbose ? LogLevel.Information : LogLevel.Warning));
        try
        {
            using StableDiffusionPipeline pipe = await LoadAsync(loggerFactory, cancellationToken).ConfigureAwait(false);
            IScheduler scheduler = settings.Scheduler is { } name ? SchedulerFactory.Create(name, pipe.Scheduler.Config) : pipe.Scheduler;
            var request = new TextToImageRequest(settings.Prompt)
            {
                NegativePrompt = settings.NegativePrompt,
                Height = settings.Height,
                Width = settings.Width,
                NumInferenceSteps = settings.Steps,
                GuidanceScale = settings.Guidance,
                NumImagesPerPrompt = settings.Count,
                Seed = seed,
                Scheduler = scheduler,
            };

            using GenerationResult result = await RunWithProgressAsync(
                "Generating", progress => pipe.GenerateAsync(request, progress, cancellationToken)).ConfigureAwait(false);
            var parameters = new GenerationParameters
            {
                Prompt = settings.Prompt,
                NegativePrompt = settings.NegativePrompt,
                Steps = settings.Steps,
                Sampler = settings.Scheduler ?? scheduler.Config.ClassName,
                CfgScale = settings.Guidance,
                Seed = seed,
                Width = result.Images[0].Width,
                Height = result.Images[0].Height,
                Model = settings.Model,
            };
            for (int i = 0; i < result.Images.Count; i++)
            {
                PngMetadata.Write(result.Images[i], parameters, paths[i], settings.Overwrite);
                bool flagged = result.NsfwContentDetected?[i] == true;
                _console.MarkupLine($"[green]Wrote[/] {Markup.Escape(paths[i])}{(flagged ? " [yellow](flagged by the safety checker: black)[/]" : string.Empty)}");
            }

            WriteSummary(result, seed);
            return CliCommand.Success;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await error.WriteLineAsync("Cancelled.").ConfigureAwait(false);
            return CliCommand.Cancelled;
        }
        catch (Exception ex) when (ex is SchedulerConfigException or ArgumentException or CliUsageException)
        {
            await error.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
            return CliCommand.UsageError;
        }
        catch (Exception ex) when (ex is ModelLoadException or HubException or ExecutionProviderException or IOException or UnauthorizedAccessException)
        {
            await error.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
            return CliCommand.Failure;
        }
    }

    private async Task<StableDiffusionPipeline> LoadAsync(ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        ExecutionProvider provider = settings.Provider switch
        {
            "cuda" => ExecutionProvider.Cuda(settings.DeviceId),
            "tensorrt" => ExecutionProvider.TensorRT(settings.DeviceId),
            "directml" => ExecutionProvider.DirectML(settings.DeviceId),
            "coreml" => ExecutionProvider.CoreML(),
            "openvino" => ExecutionProvider.OpenVino(),
            "rocm" => ExecutionProvider.Rocm(settings.DeviceId),
            _ => ExecutionProvider.Cpu,
        };
        HubOptions hub = HubOptions.FromEnvironment();
        return await RunWithProgressAsync("Loading", _ => StableDiffusionPipeline.FromPretrainedAsync(settings.Model, new StableDiffusionPipelineOptions
        {
            Session = new SessionSettings { ExecutionProvider = provider },
            EnableSafetyChecker = settings.SafetyChecker,
            Revision = settings.Revision,
            Hub = settings.Offline ? hub with { Offline = true } : hub,
            DownloadProgress = _download,
            LoggerFactory = loggerFactory,
        }, cancellationToken)).ConfigureAwait(false);
    }

    private IProgress<HubDownloadProgress>? _download;

    /// <summary>Runs <paramref name="work"/> under a live progress display: download bytes, then denoising steps.</summary>
    private async Task<T> RunWithProgressAsync<T>(string title, Func<IProgress<GenerationProgress>, Task<T>> work)
    {
        if (!_console.Profile.Capabilities.Interactive)
        {
            // Redirected output (logs, CI): plain lines at stage boundaries instead of a redrawn bar.
            var stages = new Progress<GenerationProgress>(p =>
            {
                if (p.Stage != GenerationStage.Denoising || p.Step == 0 || p.Step == p.TotalSteps)
                {
                    output.WriteLine(p.Stage == GenerationStage.Denoising
                        ? string.Create(CultureInfo.InvariantCulture, $"{title}: denoising {p.Step}/{p.TotalSteps}")
                        : $"{title}: {p.Stage}");
                }
            });
            _download = new Progress<HubDownloadProgress>(d => { });
            return await work(stages).ConfigureAwait(false);
        }

        T result = default!;
        await _console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .StartAsync(async context =>
            {
                ProgressTask? download = null;
                ProgressTask steps = context.AddTask($"{title}", autoStart: true, maxValue: 1);
                _download = new SynchronousProgress<HubDownloadProgress>(d =>
                {
                    download ??= context.AddTask("Downloading", maxValue: Math.Max(1, d.TotalBytes));
                    download.MaxValue = Math.Max(1, d.TotalBytes);
                    download.Value = d.BytesDownloaded;
                    download.Description = $"Downloading {d.FilesCompleted}/{d.TotalFiles} files";
                });
                var progress = new SynchronousProgress<GenerationProgress>(p =>
                {
                    if (p.Stage == GenerationStage.Denoising && p.TotalSteps > 0)
                    {
                        steps.MaxValue = p.TotalSteps;
                        steps.Value = p.Step;
                        steps.Description = string.Create(CultureInfo.InvariantCulture, $"Denoising {p.Step}/{p.TotalSteps}");
                    }
                    else
                    {
                        steps.Description = p.Stage.ToString();
                    }
                });
                result = await work(progress).ConfigureAwait(false);
                steps.Value = steps.MaxValue;
                steps.Description = title == "Loading" ? "Loaded" : "Done";
            }).ConfigureAwait(false);
        return result;
    }

    private void WriteSummary(GenerationResult result, ulong seed)
    {
        GenerationTimings t = result.Timings;
        var table = new Table().AddColumn("stage").AddColumn(new TableColumn("time").RightAligned());
        void Row(string stage, TimeSpan time) => table.AddRow(stage, time.TotalSeconds.ToString("0.000 s", CultureInfo.InvariantCulture));
        Row("prompt encoding", t.PromptEncoding);
        Row($"denoising ({t.UNetCalls} UNet calls)", t.Denoising);
        Row("  inside the UNet", t.UNet);
        Row("  inside the scheduler", t.Scheduler);
        Row("VAE decoding", t.Decoding);
        Row("safety checker", t.SafetyChecking);
        Row("total", t.Total);
        _console.Write(table);
        _console.MarkupLineInterpolated($"Seed: [bold]{seed}[/]");
    }

    private IReadOnlyList<string> OutputPaths(ulong seed)
    {
        string path = settings.Output ?? string.Create(CultureInfo.InvariantCulture, $"sdnet-{seed}.png");
        if (settings.Count == 1)
        {
            return [path];
        }

        string stem = Path.Combine(Path.GetDirectoryName(path) ?? string.Empty, Path.GetFileNameWithoutExtension(path));
        string extension = Path.GetExtension(path) is { Length: > 0 } e ? e : ".png";
        return [.. Enumerable.Range(1, settings.Count).Select(i => string.Create(CultureInfo.InvariantCulture, $"{stem}-{i}{extension}"))];
    }

    /// <summary>Reports on the calling thread: the display is redrawn by Spectre's own loop.</summary>
    private sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
