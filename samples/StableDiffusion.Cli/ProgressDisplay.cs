using System.Globalization;
using Spectre.Console;
using StableDiffusion.Hub;
using StableDiffusion.Pipelines;

namespace StableDiffusion.Cli;

/// <summary>Where a run reports how far it has come: the download, the model load, and each image's stages and steps.</summary>
internal interface IProgressReporter
{
    /// <summary>Receives the Hub download's bytes (from several threads at once).</summary>
    IProgress<HubDownloadProgress> Download { get; }

    /// <summary>The model starts loading.</summary>
    void Loading(string model);

    /// <summary>The model is loaded.</summary>
    void Loaded();

    /// <summary>Receives the stages and denoising steps of image <paramref name="index"/> (from 0) of <paramref name="count"/>.</summary>
    IProgress<GenerationProgress> Image(int index, int count);
}

/// <summary>
/// Shows progress: in an interactive terminal, live bars (download bytes, then denoising steps per image) redrawn in
/// place; otherwise (redirected output, CI logs, tests) one plain line per stage.
/// </summary>
internal static class ProgressDisplay
{
    public static async Task<T> RunAsync<T>(IAnsiConsole console, Func<IProgressReporter, Task<T>> work)
    {
        if (!IsLive(console))
        {
            return await work(new PlainReporter(console)).ConfigureAwait(false);
        }

        return await console.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .StartAsync(context => work(new LiveReporter(context))).ConfigureAwait(false);
    }

    /// <summary>Whether the console is a terminal that can redraw a live display.</summary>
    public static bool IsLive(IAnsiConsole console) =>
        console.Profile.Out.IsTerminal && console.Profile.Capabilities.Interactive && console.Profile.Capabilities.Ansi;

    private static string Describe(GenerationStage stage) => stage switch
    {
        GenerationStage.EncodingPrompt => "encoding the prompt",
        GenerationStage.EncodingImage => "encoding the image",
        GenerationStage.Denoising => "denoising",
        GenerationStage.Decoding => "decoding",
        GenerationStage.SafetyChecking => "safety checker",
        _ => "done",
    };

    private static string ImageLabel(int index, int count) =>
        count == 1 ? "Image" : string.Create(CultureInfo.InvariantCulture, $"Image {index + 1}/{count}");

    internal static string Bytes(double bytes) => bytes switch
    {
        >= 1 << 30 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1 << 30):0.00} GB"),
        >= 1 << 20 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1 << 20):0.0} MB"),
        >= 1 << 10 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1 << 10):0} kB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes:0} B"),
    };

    /// <summary>Live bars, updated on the reporting thread (Spectre redraws on its own timer).</summary>
    private sealed class LiveReporter(ProgressContext context) : IProgressReporter
    {
        private readonly Lock _lock = new();
        private ProgressTask? _download;
        private ProgressTask? _loading;

        public IProgress<HubDownloadProgress> Download => new Reporter<HubDownloadProgress>(d =>
        {
            lock (_lock)
            {
                _download ??= context.AddTask("Downloading", autoStart: true, maxValue: 1);
            }

            _download.MaxValue = Math.Max(1, d.TotalBytes);
            _download.Value = d.BytesDownloaded;
            string speed = _download.Speed is double perSecond ? $", {Bytes(perSecond)}/s" : string.Empty;
            _download.Description = Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                $"Downloading {d.RepoId}: {d.FilesCompleted}/{d.TotalFiles} files, {Bytes(d.BytesDownloaded)} of {Bytes(d.TotalBytes)}{speed}"));
        });

        public void Loading(string model)
        {
            _loading = context.AddTask(Markup.Escape($"Loading {model}"), autoStart: true, maxValue: 1);
            _loading.IsIndeterminate = true;
        }

        public void Loaded()
        {
            _loading!.IsIndeterminate = false;
            _loading.Value = 1;
            _loading.StopTask();
            if (_download is { } download)
            {
                download.Value = download.MaxValue;
                download.StopTask();
            }
        }

        public IProgress<GenerationProgress> Image(int index, int count)
        {
            string label = ImageLabel(index, count);
            ProgressTask task = context.AddTask(label, autoStart: true, maxValue: 1);
            return new Reporter<GenerationProgress>(p =>
            {
                if (p.Stage == GenerationStage.Denoising && p.TotalSteps > 0)
                {
                    task.MaxValue = p.TotalSteps;
                    task.Value = p.Step;
                    task.Description = string.Create(CultureInfo.InvariantCulture, $"{label}: denoising {p.Step}/{p.TotalSteps}");
                }
                else if (p.Stage == GenerationStage.Completed)
                {
                    task.Value = task.MaxValue;
                    task.Description = $"{label}: done";
                    task.StopTask();
                }
                else
                {
                    task.Description = $"{label}: {Describe(p.Stage)}";
                }
            });
        }
    }

    /// <summary>One line per stage, and one per downloaded file, for output that is not a terminal.</summary>
    private sealed class PlainReporter(IAnsiConsole console) : IProgressReporter
    {
        private readonly Lock _lock = new();
        private int _filesReported = -1;

        public IProgress<HubDownloadProgress> Download => new Reporter<HubDownloadProgress>(d =>
        {
            lock (_lock)
            {
                if (d.FilesCompleted == _filesReported)
                {
                    return;
                }

                _filesReported = d.FilesCompleted;
                console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"Downloading {d.RepoId}: {d.FilesCompleted}/{d.TotalFiles} files, {Bytes(d.BytesDownloaded)} of {Bytes(d.TotalBytes)}"));
            }
        });

        public void Loading(string model) => console.WriteLine($"Loading {model}");

        public void Loaded() => console.WriteLine("Loaded");

        public IProgress<GenerationProgress> Image(int index, int count)
        {
            string label = ImageLabel(index, count);
            return new Reporter<GenerationProgress>(p =>
            {
                // Steps in between would flood a log; the first and last say the loop ran.
                if (p.Stage != GenerationStage.Denoising || p.Step == 0 || p.Step == p.TotalSteps)
                {
                    console.WriteLine(p.Stage == GenerationStage.Denoising
                        ? string.Create(CultureInfo.InvariantCulture, $"{label}: denoising {p.Step}/{p.TotalSteps}")
                        : $"{label}: {Describe(p.Stage)}");
                }
            });
        }
    }

    /// <summary>Reports on the calling thread, in order (<see cref="Progress{T}"/> would post to the thread pool and
    /// could report a step after the image was written).</summary>
    private sealed class Reporter<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
