using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using Microsoft.Extensions.Logging;
using Spectre.Console;
using StableDiffusion.ExecutionProviders;
using StableDiffusion.Hub;
using StableDiffusion.Imaging;
using StableDiffusion.Models;
using StableDiffusion.Pipelines;
using StableDiffusion.Schedulers;
using StableDiffusion.Tokenization;

namespace StableDiffusion.Cli;

/// <summary>
/// Runs one command line: load the model (downloading it if needed), generate each image under a live progress display,
/// write each PNG as soon as it is ready, then summarise the time spent per stage.
/// </summary>
/// <remarks>Standard output gets the paths written, one per line, so the tool composes with other commands; progress,
/// warnings, the summary and errors go to standard error.</remarks>
internal sealed class Generator(CliSettings settings, TextWriter output, TextWriter error)
{
    private static readonly string Version =
        typeof(Generator).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    private readonly IAnsiConsole _console = CreateConsole(error);

    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        // The seed is fixed up front so that file names and metadata can name it. Random seeds stay below 2^32, as web
        // UIs' do, so they are short to type and every UI accepts them.
        ulong seed = settings.Seed ?? (ulong)Random.Shared.NextInt64(uint.MaxValue);
        IReadOnlyList<string> paths = OutputPaths(seed);
        if (!settings.Overwrite && paths.FirstOrDefault(File.Exists) is { } existing)
        {
            await error.WriteLineAsync($"error: '{existing}' already exists; pass --overwrite to replace it, or choose another --output.").ConfigureAwait(false);
            return CliCommand.UsageError;
        }

        // Input images are decoded and checked before the model loads, so a bad file fails in a moment, not after a download.
        RgbImage? initImage, mask;
        try
        {
            RequireProvider();
            (initImage, mask) = LoadInputs();
        }
        catch (CliUsageException ex)
        {
            _console.MarkupLine($"[red]error:[/] {Markup.Escape(ex.Message)}");
            return CliCommand.UsageError;
        }

        var written = new List<string>();
        var timings = new List<GenerationTimings>();
        // Warnings always show (turning the safety checker off is one); -v adds what the SDK does.
        using var loggerFactory = LoggerFactory.Create(logging => logging
            .SetMinimumLevel(LogLevel.Trace)
            .AddProvider(new ConsoleLoggerProvider(_console, settings.Verbose ? LogLevel.Information : LogLevel.Warning)));
        try
        {
            TimeSpan loadTime = default;
            await ProgressDisplay.RunAsync(_console, async progress =>
            {
                long loadStart = Stopwatch.GetTimestamp();
                using DiffusionPipeline pipe = await LoadAsync(progress, loggerFactory, cancellationToken).ConfigureAwait(false);
                loadTime = Stopwatch.GetElapsedTime(loadStart);
                IScheduler scheduler = settings.Scheduler is { } name ? SchedulerFactory.Create(name, pipe.Scheduler.Config) : pipe.Scheduler;
                try
                {
                    for (int i = 0; i < settings.Count; i++)
                    {
                        // One generation per image, each with its own seed: every PNG then holds the settings that reproduce it alone.
                        ulong imageSeed = seed + (ulong)i;
                        IProgress<GenerationProgress> imageProgress = progress.Image(i, settings.Count);
                        using GenerationResult result = pipe switch
                        {
                            StableDiffusionInpaintPipeline inpaint => await inpaint.GenerateAsync(Apply(new InpaintRequest(settings.Prompt, initImage!, mask!)
                            {
                                // Keep the picture's size, rounded down to a multiple of 8, as web UIs do (the library
                                // follows diffusers, whose inpainting default is the model's 512).
                                Strength = settings.Strength,
                                Height = settings.Height ?? initImage!.Height / 8 * 8,
                                Width = settings.Width ?? initImage!.Width / 8 * 8,
                            }, scheduler, imageSeed), imageProgress, cancellationToken).ConfigureAwait(false),
                            StableDiffusionImg2ImgPipeline img2img => await img2img.GenerateAsync(Apply(new Img2ImgRequest(settings.Prompt, initImage!)
                            {
                                Strength = settings.Strength,
                            }, scheduler, imageSeed), imageProgress, cancellationToken).ConfigureAwait(false),
                            StableDiffusionPipeline text => await text.GenerateAsync(Apply(new TextToImageRequest(settings.Prompt)
                            {
                                Height = settings.Height, Width = settings.Width,
                            }, scheduler, imageSeed), imageProgress, cancellationToken).ConfigureAwait(false),
                            _ => throw new InvalidOperationException($"Unexpected pipeline {pipe.GetType().Name}."),
                        };
                        Write(result, paths[i]);
                        written.Add(paths[i]);
                        timings.Add(result.Timings);
                    }
                }
                catch (ArgumentOutOfRangeException ex) when (ex.ParamName == nameof(DiffusionRequest.ClipSkip) && settings.ClipSkip is int clipSkip)
                {
                    // Only the loaded text encoder knows its layers; the tool counts as web UIs do (1 = no skip).
                    int layers = pipe.TextEncoder.MaxClipSkip;
                    throw new CliUsageException($"--clip-skip {clipSkip + 1}: this model's text encoder has {layers} layers, so --clip-skip takes 1 to {layers + 1}.");
                }

                return true;
            }).ConfigureAwait(false);

            WriteSummary(loadTime, timings, seed);
            return CliCommand.Success;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            _console.MarkupLine("[yellow]Cancelled.[/]");
            return CliCommand.Cancelled;
        }
        catch (Exception ex) when (ex is SchedulerConfigException or ArgumentException or CliUsageException)
        {
            _console.MarkupLine($"[red]error:[/] {Markup.Escape(UserMessage(ex))}");
            return CliCommand.UsageError;
        }
        catch (Exception ex) when (ex is StableDiffusionException or IOException or UnauthorizedAccessException)
        {
            _console.MarkupLine($"[red]error:[/] {Markup.Escape(UserMessage(ex))}");
            return CliCommand.Failure;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Anything else is a bug here or in the SDK: say what it was, and show where with --verbose.
            _console.MarkupLine($"[red]error:[/] unexpected {Markup.Escape(ex.GetType().Name)}: {Markup.Escape(ex.Message)}");
            if (settings.Verbose)
            {
                _console.WriteException(ex);
            }

            return CliCommand.Failure;
        }
        finally
        {
            // Paths go out even when a later image failed or was cancelled: those files are complete.
            foreach (string path in written)
            {
                await output.WriteLineAsync(path).ConfigureAwait(false);
            }
        }
    }

    private static IAnsiConsole CreateConsole(TextWriter writer)
    {
        var output = new AnsiConsoleOutput(writer);
        if (output.IsTerminal)
        {
            return AnsiConsole.Create(new AnsiConsoleSettings { Out = output });
        }

        // Logs, pipes and files get plain text: no colours or cursor codes, and no wrapping at Spectre's default 80 columns.
        IAnsiConsole console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = output,
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        console.Profile.Width = 1000;
        return console;
    }

    private ExecutionProvider Provider() => settings.Provider switch
    {
        "cuda" => ExecutionProvider.Cuda(settings.DeviceId),
        "tensorrt" => ExecutionProvider.TensorRT(settings.DeviceId),
        "directml" => ExecutionProvider.DirectML(settings.DeviceId),
        "coreml" => ExecutionProvider.CoreML(),
        "openvino" => ExecutionProvider.OpenVino(),
        "rocm" => ExecutionProvider.Rocm(settings.DeviceId),
        _ => ExecutionProvider.Cpu,
    };

    /// <summary>Refuses a provider this build's ONNX Runtime lacks, in the tool's terms (the SDK's own message tells a
    /// developer which package to reference; a user of the tool needs to know which build to make).</summary>
    private void RequireProvider()
    {
        ExecutionProvider provider = Provider();
        if (provider.IsAvailable)
        {
            return;
        }

        string has = string.Join(", ", Microsoft.ML.OnnxRuntime.OrtEnv.Instance().GetAvailableProviders().Select(static p => p.Replace("ExecutionProvider", string.Empty, StringComparison.Ordinal)));
        throw new CliUsageException(settings.Provider is "cuda" or "tensorrt"
            ? $"--provider {settings.Provider}: this build of sdnet has no {provider.Name} (its ONNX Runtime has {has}). Build it with -p:UseCuda=true " +
              "(with the NVIDIA driver, CUDA and cuDNN 9 installed; see docs/cli.md), or leave out --provider to run on the CPU."
            : $"--provider {settings.Provider}: this build of sdnet has no {provider.Name} (its ONNX Runtime has {has}); sdnet builds with ONNX Runtime's " +
              "CPU package, or its CUDA package with -p:UseCuda=true. Leave out --provider to run on the CPU.");
    }

    private async Task<DiffusionPipeline> LoadAsync(IProgressReporter progress, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        HubOptions hub = HubOptions.FromEnvironment();
        progress.Loading(settings.Model);
        var options = new StableDiffusionPipelineOptions
        {
            Session = new SessionSettings { ExecutionProvider = Provider() },
            EnableSafetyChecker = settings.SafetyChecker,
            BaseModel = settings.BaseModel,
            Revision = settings.Revision,
            Variant = settings.Variant,
            Hub = settings.Offline ? hub with { Offline = true } : hub,
            DownloadProgress = progress.Download,
            LoggerFactory = loggerFactory,
        };
        // A file is a single-file checkpoint; anything else a model folder or repository id.
        bool singleFile = File.Exists(settings.Model);
        DiffusionPipeline pipe = (settings.InitImage, settings.Mask, singleFile) switch
        {
            (null, _, false) => await StableDiffusionPipeline.FromPretrainedAsync(settings.Model, options, cancellationToken).ConfigureAwait(false),
            (null, _, true) => await StableDiffusionPipeline.FromSingleFileAsync(settings.Model, options, cancellationToken).ConfigureAwait(false),
            (_, null, false) => await StableDiffusionImg2ImgPipeline.FromPretrainedAsync(settings.Model, options, cancellationToken).ConfigureAwait(false),
            (_, null, true) => await StableDiffusionImg2ImgPipeline.FromSingleFileAsync(settings.Model, options, cancellationToken).ConfigureAwait(false),
            (_, _, false) => await StableDiffusionInpaintPipeline.FromPretrainedAsync(settings.Model, options, cancellationToken).ConfigureAwait(false),
            (_, _, true) => await StableDiffusionInpaintPipeline.FromSingleFileAsync(settings.Model, options, cancellationToken).ConfigureAwait(false),
        };
        try
        {
            foreach (Embedding embedding in settings.Embeddings)
            {
                pipe.LoadTextualInversion(embedding.File, embedding.Token);
            }

            LoraPrompt.Apply(pipe, settings.Loras);
        }
        catch
        {
            pipe.Dispose();
            throw;
        }

        if (settings.ExpectedEmbeddings.Except(pipe.TextualInversionTokens, StringComparer.Ordinal).ToArray() is { Length: > 0 } missing)
        {
            _console.MarkupLine($"[yellow]warning:[/] {Markup.Escape($"--from-png: the PNG's prompts use the embeddings {string.Join(", ", missing)}, which are not loaded, so the image will differ; pass them with --embedding file:token.")}");
        }

        progress.Loaded();
        return pipe;
    }

    private T Apply<T>(T request, IScheduler scheduler, ulong seed) where T : DiffusionRequest => request with
    {
        NegativePrompt = settings.NegativePrompt,
        NumInferenceSteps = settings.Steps,
        GuidanceScale = settings.Guidance,
        Seed = seed,
        Scheduler = scheduler,
        ClipSkip = settings.ClipSkip,
        PromptWeighting = settings.PromptWeighting,
    };

    /// <summary>Decodes --init-image and --mask and checks what can be checked without the model.</summary>
    private (RgbImage? Image, RgbImage? Mask) LoadInputs()
    {
        if (settings.InitImage is not { } imagePath)
        {
            return (null, null);
        }

        RgbImage image = ImageFiles.Load(imagePath, "--init-image", isMask: false);
        if (settings.Mask is null && (image.Width < 8 || image.Height < 8))
        {
            throw new CliUsageException($"--init-image: '{imagePath}' is {image.Width}x{image.Height} pixels; image-to-image needs at least 8x8 (the output has the input's size, rounded down to a multiple of 8).");
        }

        if (settings.Mask is not { } maskPath)
        {
            return (image, null);
        }

        RgbImage mask = ImageFiles.Load(maskPath, "--mask", isMask: true);
        if (mask.Width != image.Width || mask.Height != image.Height)
        {
            throw new CliUsageException(
                $"--mask: '{maskPath}' is {mask.Width}x{mask.Height} pixels but --init-image '{imagePath}' is {image.Width}x{image.Height}; the mask must have the image's size.");
        }

        // Inpainting keeps the picture's size too, unless --width and --height choose another.
        if ((settings.Width is null || settings.Height is null) && (image.Width < 8 || image.Height < 8))
        {
            throw new CliUsageException(
                $"--init-image: '{imagePath}' is {image.Width}x{image.Height} pixels; inpainting needs at least 8x8 (the output has the input's size, rounded down to a multiple of 8), or give --width and --height.");
        }

        return (image, mask);
    }

    /// <summary>
    /// An SDK error's message for the command line: the SDK names its request properties (Height, NumInferenceSteps) as a
    /// C# caller knows them, and .NET appends "(Parameter 'name')" and "Actual value was ..."; the tool's users need neither.
    /// </summary>
    internal static string UserMessage(Exception error)
    {
        string message = error.Message;
        if (error is ArgumentException { ParamName: { } name })
        {
            message = message.Replace($" (Parameter '{name}')", string.Empty, StringComparison.Ordinal);
        }

        return CliTerms.Translate(error is ArgumentOutOfRangeException ? message.Split(Environment.NewLine)[0] : message);
    }

    private void Write(GenerationResult result, string path)
    {
        // The PNG records the tool's version beside the settings, as web UIs do.
        GenerationParameters parameters = result.Parameters[0] with
        {
            Prompt = settings.RecordedPrompt,
            Extra = new Dictionary<string, string> { ["Version"] = $"sdnet {Version}" },
        };
        // A flagged image is written black; the SDK's log says so, as a warning the console always shows.
        ImageFiles.Write(result.Images[0], parameters, path, settings.Overwrite);
    }

    private void WriteSummary(TimeSpan loadTime, IReadOnlyList<GenerationTimings> timings, ulong seed)
    {
        TimeSpan Sum(Func<GenerationTimings, TimeSpan> stage) => timings.Aggregate(TimeSpan.Zero, (total, t) => total + stage(t));
        int unetCalls = timings.Sum(t => t.UNetCalls);
        var table = new Table().Border(TableBorder.Rounded).AddColumn("stage").AddColumn(new TableColumn("time").RightAligned());
        void Row(string stage, TimeSpan time) => table.AddRow(stage, time.TotalSeconds.ToString("0.000 s", CultureInfo.InvariantCulture));
        Row("loading the model", loadTime);
        Row("prompt encoding", Sum(t => t.PromptEncoding));
        Row(string.Create(CultureInfo.InvariantCulture, $"denoising ({unetCalls} UNet calls)"), Sum(t => t.Denoising));
        Row("  inside the UNet", Sum(t => t.UNet));
        Row("  inside the scheduler", Sum(t => t.Scheduler));
        Row("VAE decoding", Sum(t => t.Decoding));
        if (settings.SafetyChecker)
        {
            Row("safety checker", Sum(t => t.SafetyChecking));
        }

        Row(timings.Count == 1 ? "generation" : string.Create(CultureInfo.InvariantCulture, $"generation ({timings.Count} images)"), Sum(t => t.Total));
        _console.Write(table);
        _console.MarkupLine(timings.Count == 1
            ? string.Create(CultureInfo.InvariantCulture, $"Seed: [bold]{seed}[/]")
            : string.Create(CultureInfo.InvariantCulture, $"Seeds: [bold]{seed}[/] to [bold]{seed + (ulong)timings.Count - 1}[/]"));
    }

    private IReadOnlyList<string> OutputPaths(ulong seed)
    {
        if (settings.Output is null)
        {
            return [.. Enumerable.Range(0, settings.Count).Select(i => string.Create(CultureInfo.InvariantCulture, $"sdnet-{seed + (ulong)i}.png"))];
        }

        if (settings.Count == 1)
        {
            return [settings.Output];
        }

        string stem = Path.Combine(Path.GetDirectoryName(settings.Output) ?? string.Empty, Path.GetFileNameWithoutExtension(settings.Output));
        string extension = Path.GetExtension(settings.Output) is { Length: > 0 } e ? e : ".png";
        return [.. Enumerable.Range(1, settings.Count).Select(i => string.Create(CultureInfo.InvariantCulture, $"{stem}-{i}{extension}"))];
    }
}
