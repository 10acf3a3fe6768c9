using System.Diagnostics;
using StableDiffusion.Hub.Tests.FakeHub;
using StableDiffusion.Hub;
using StableDiffusion.Pipelines;

namespace StableDiffusion.Core.Tests.Hardening.Drills;

/// <summary>What one cancelled download did.</summary>
/// <param name="CancelAfter">When the token was cancelled, from the call.</param>
/// <param name="Outcome">"cancelled", "completed" (the load finished first), or any other exception's type and message.</param>
/// <param name="Latency">From <see cref="CancellationTokenSource.Cancel()"/> to the exception reaching the caller.</param>
/// <param name="CacheProblems">Partial or wrong blobs, left-over temporary files, snapshot entries that do not hold their file.</param>
public sealed record DownloadCancellationOutcome(TimeSpan CancelAfter, string Outcome, TimeSpan Latency, IReadOnlyList<string> CacheProblems)
{
    /// <summary>Whether the call ended in <see cref="OperationCanceledException"/>.</summary>
    public bool Cancelled => Outcome == "cancelled";
}

/// <summary>
/// Serves a fixture model from a fake Hugging Face Hub over a slow link, cancels <c>FromPretrainedAsync</c> partway through
/// the download, and inspects the cache: it must never hold a partial blob where a complete one is expected.
/// </summary>
public sealed class DownloadCancellationDrill : IAsyncDisposable
{
    /// <summary>The repository the model is served as.</summary>
    public const string RepoId = "hardening/tiny-sd-onnx";

    private readonly FakeHubServer _server;
    private readonly IReadOnlyDictionary<string, FakeFile> _files;
    private readonly string _commit;

    private DownloadCancellationDrill(FakeHubServer server, IReadOnlyDictionary<string, FakeFile> files, string commit, string cacheDirectory)
    {
        _server = server;
        _files = files;
        _commit = commit;
        CacheDirectory = cacheDirectory;
    }

    /// <summary>The Hub cache the loads write to.</summary>
    public string CacheDirectory { get; }

    /// <summary>Options that load from the fake Hub into <see cref="CacheDirectory"/>, failing fast rather than retrying.</summary>
    public StableDiffusionPipelineOptions Options => new()
    {
        Hub = new HubOptions
        {
            Endpoint = _server.Endpoint,
            CacheDirectory = CacheDirectory,
            MaxRetries = 1,
            InitialRetryDelay = TimeSpan.FromMilliseconds(5),
            MaxRetryDelay = TimeSpan.FromMilliseconds(5),
            ResumeDelay = TimeSpan.Zero,
        },
    };

    /// <summary>Serves <paramref name="modelFolder"/> with every body sent <paramref name="chunkBytes"/> at a time, <paramref name="pause"/> apart.</summary>
    /// <param name="modelFolder">A model folder to serve (read, never changed).</param>
    /// <param name="chunkBytes">The size of each chunk of a body.</param>
    /// <param name="pause">The pause after each chunk.</param>
    public static async Task<DownloadCancellationDrill> StartAsync(string modelFolder, int chunkBytes, TimeSpan pause)
    {
        FakeHubServer server = await FakeHubServer.StartAsync().ConfigureAwait(false);
        FakeRepository repository = server.AddRepository(RepoId);
        Dictionary<string, byte[]> files = Directory.EnumerateFiles(modelFolder, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(modelFolder, f).Replace('\\', '/'), File.ReadAllBytes, StringComparer.Ordinal);
        string commit = repository.AddCommit(files, FakeContent.IsLfs, "main");
        server.Throttle(r => r.Method == "GET", chunkBytes, pause);
        string cache = Path.Combine(Path.GetTempPath(), "sd-hardening-hub", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(cache);
        return new DownloadCancellationDrill(server, repository.Files(commit), commit, cache);
    }

    /// <summary>Starts a load, cancels it after <paramref name="cancelAfter"/>, and inspects the cache.</summary>
    /// <param name="cancelAfter">When to cancel.</param>
    public async Task<DownloadCancellationOutcome> RunOnceAsync(TimeSpan cancelAfter)
    {
        using var cancellation = new CancellationTokenSource();
        long cancelledAt = 0;
        var timer = new Thread(() =>
        {
            Thread.Sleep(cancelAfter);
            Volatile.Write(ref cancelledAt, Stopwatch.GetTimestamp());
            cancellation.Cancel();
        })
        {
            IsBackground = true,
        };
        timer.Start();
        string outcome;
        long endedAt;
        try
        {
            using StableDiffusionPipeline pipeline = await StableDiffusionPipeline.FromPretrainedAsync(RepoId, Options, cancellation.Token).ConfigureAwait(false);
            endedAt = Stopwatch.GetTimestamp();
            outcome = "completed";
        }
        catch (OperationCanceledException)
        {
            endedAt = Stopwatch.GetTimestamp();
            outcome = "cancelled";
        }
#pragma warning disable CA1031 // The drill records whatever else escapes: that is its finding.
        catch (Exception e)
#pragma warning restore CA1031
        {
            endedAt = Stopwatch.GetTimestamp();
            outcome = e.GetType().Name + ": " + e.Message;
        }

        timer.Join();
        TimeSpan latency = outcome == "cancelled" ? Stopwatch.GetElapsedTime(Volatile.Read(ref cancelledAt), endedAt) : TimeSpan.Zero;
        return new DownloadCancellationOutcome(cancelAfter, outcome, latency, CacheProblems());
    }

    /// <summary>Loads the model from the fake Hub without cancelling (resuming from whatever the cache holds).</summary>
    /// <param name="cancellationToken">Cancels the load.</param>
    public Task<StableDiffusionPipeline> LoadAsync(CancellationToken cancellationToken) =>
        StableDiffusionPipeline.FromPretrainedAsync(RepoId, Options, cancellationToken);

    /// <summary>Empties the cache, so that the next load starts from nothing.</summary>
    public void ResetCache()
    {
        Directory.Delete(CacheDirectory, recursive: true);
        Directory.CreateDirectory(CacheDirectory);
    }

    /// <summary>What is wrong in the cache (see <see cref="HubCacheCheck.Problems"/>).</summary>
    public IReadOnlyList<string> CacheProblems() => HubCacheCheck.Problems(CacheDirectory, RepoId, _commit, _files);

    /// <summary>Stops the server and deletes the cache.</summary>
    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync().ConfigureAwait(false);
        try
        {
            Directory.Delete(CacheDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
