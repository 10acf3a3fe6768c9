using System.Text;
using Microsoft.Extensions.Logging.Testing;
using StableDiffusion.Hub.Tests.FakeHub;
using StableDiffusion.Hub;
using Xunit;

namespace StableDiffusion.Hub.Tests;

/// <summary>Downloads through a real HTTP server on loopback: cache layout, redirects, tokens, resume, integrity, concurrency.</summary>
[Trait("Area", "Hub")]
public sealed class HubDownloadTests : IAsyncLifetime
{
    private const string RepoId = "test-org/tiny-model";
    private static readonly byte[] Config = Encoding.UTF8.GetBytes("""{"hidden_size": 8}""");
    private static readonly byte[] Weights = FakeContent.Bytes(200_000, seed: 7);

    private HubTestContext _hub = null!;
    private FakeRepository _repository = null!;
    private string _commit = null!;

    public async ValueTask InitializeAsync()
    {
        _hub = await HubTestContext.StartAsync();
        _repository = _hub.Server.AddRepository(RepoId);
        _commit = _repository.AddCommit(
            new Dictionary<string, byte[]> { ["config.json"] = Config, ["unet/weights.pb"] = Weights, ["README.md"] = "hi"u8.ToArray() },
            isLfs: p => p.EndsWith(".pb", StringComparison.Ordinal),
            "main");
    }

    public async ValueTask DisposeAsync() => await _hub.DisposeAsync();

    [Fact]
    public async Task DownloadSnapshot_WritesHuggingfaceHubCacheLayout()
    {
        string snapshot = await _hub.Client().DownloadSnapshotAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken);

        string storage = _hub.Storage(RepoId);
        FakeFile config = _repository.File(_commit, "config.json");
        FakeFile weights = _repository.File(_commit, "unet/weights.pb");
        Assert.Equal(Path.Combine(storage, "snapshots", _commit), snapshot);
        Assert.Equal(_commit, File.ReadAllText(Path.Combine(storage, "refs", "main")));
        Assert.Equal(
            new[] { weights.Sha256, config.GitSha1, _repository.File(_commit, "README.md").GitSha1 }.Select(etag => "blobs/" + etag).Order(StringComparer.Ordinal),
            HubTestContext.FilesUnder(storage).Where(p => p.StartsWith("blobs/", StringComparison.Ordinal)));
        Assert.Equal("../../blobs/" + config.GitSha1, new FileInfo(Path.Combine(snapshot, "config.json")).LinkTarget);
        Assert.Equal("../../../blobs/" + weights.Sha256, new FileInfo(Path.Combine(snapshot, "unet", "weights.pb")).LinkTarget);
        Assert.Equal(Weights, File.ReadAllBytes(Path.Combine(snapshot, "unet", "weights.pb")));
        Assert.Equal(Config, File.ReadAllBytes(Path.Combine(snapshot, "config.json")));
        Assert.StartsWith("Signature: 8a477f597d28d172789f06886806bc55", File.ReadAllText(Path.Combine(_hub.CacheDirectory, "CACHEDIR.TAG")), StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(_hub.CacheDirectory, ".locks", "models--test-org--tiny-model", weights.Sha256 + ".lock")));
        Assert.DoesNotContain(HubTestContext.FilesUnder(storage), p => p.EndsWith(".incomplete", StringComparison.Ordinal) || p.EndsWith(".tmp", StringComparison.Ordinal));
    }

    [Fact]
    public async Task DownloadSnapshot_WritesTheListingCacheInPythonsFormat()
    {
        await _hub.Client().DownloadSnapshotAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken);

        using var tree = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(_hub.Storage(RepoId), "trees", _commit + ".json")));
        Assert.Equal(1, tree.RootElement.GetProperty("format_version").GetInt32());
        System.Text.Json.JsonElement weights = tree.RootElement.GetProperty("files").GetProperty("unet/weights.pb");
        Assert.Equal(_repository.File(_commit, "unet/weights.pb").Sha256, weights.GetProperty("lfs_sha256").GetString());
        Assert.Equal(Weights.Length, weights.GetProperty("lfs_size").GetInt64());
        Assert.Equal(_repository.File(_commit, "config.json").GitSha1, tree.RootElement.GetProperty("files").GetProperty("config.json").GetProperty("blob_id").GetString());
    }

    [Fact]
    public async Task DownloadSnapshot_SendsTheTokenToTheHubButNeverToTheCdn()
    {
        await _hub.Client().DownloadSnapshotAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken);

        RecordedRequest[] requests = [.. _hub.Server.Requests];
        Assert.Contains(requests, r => r.ToCdn);
        Assert.All(requests.Where(r => !r.ToCdn), r => Assert.Equal("Bearer " + HubTestContext.Token, r.Authorization));
        Assert.All(requests.Where(r => r.ToCdn), r => Assert.Null(r.Authorization));
    }

    [Fact]
    public async Task DownloadSnapshot_NeverLogsTheTokenOrSignedUrls()
    {
        _hub.Server.DropConnection(r => r.ToCdn, afterBytes: 1000);
        await _hub.Client().DownloadSnapshotAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken);

        IReadOnlyList<FakeLogRecord> logs = _hub.Logger.Collector.GetSnapshot();
        Assert.NotEmpty(logs);
        Assert.All(logs, log => Assert.DoesNotContain(HubTestContext.Token, log.Message, StringComparison.Ordinal));
        Assert.All(logs, log => Assert.DoesNotContain("X-Amz-Signature", log.Message, StringComparison.Ordinal));
        Assert.Contains(logs, log => log.Message.Contains("resuming", StringComparison.Ordinal));
    }

    [Fact]
    public async Task DownloadSnapshot_ReportsProgressInBytesUpToTheTotal()
    {
        var reports = new List<HubDownloadProgress>();
        var progress = new SynchronousProgress<HubDownloadProgress>(reports.Add);

        await _hub.Client().DownloadSnapshotAsync(RepoId, progress: progress, cancellationToken: TestContext.Current.CancellationToken);

        HubDownloadProgress last = reports.MaxBy(r => r.FilesCompleted);
        long total = Config.Length + Weights.Length + 2;
        Assert.Equal(total, last.TotalBytes);
        Assert.Equal(total, last.BytesDownloaded);
        Assert.Equal(3, last.FilesCompleted);
        Assert.Equal(3, last.TotalFiles);
        Assert.All(reports, r => Assert.Equal(RepoId, r.RepoId));
    }

    [Fact]
    public async Task DownloadSnapshot_WithAllowPatterns_DownloadsOnlyMatchingFiles()
    {
        string snapshot = await _hub.Client().DownloadSnapshotAsync(RepoId, allowPatterns: ["*.json"], cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(["config.json"], HubTestContext.FilesUnder(snapshot));
        Assert.DoesNotContain(_hub.Server.Requests, r => r.ToCdn);
    }

    [Fact]
    public async Task DownloadSnapshot_SecondTime_MakesNoFileRequests()
    {
        HubClient client = _hub.Client();
        await client.DownloadSnapshotAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken);
        int before = _hub.Server.Requests.Count;

        await client.DownloadSnapshotAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken);

        // Only the revision lookup: the listing comes from trees/{commit}.json and every file is in the snapshot.
        RecordedRequest[] after = [.. _hub.Server.Requests.Skip(before)];
        Assert.Single(after);
        Assert.Contains("/api/models/test-org/tiny-model/revision/main", after[0].Path, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DownloadFile_PlainFile_IsServedByTheHubWithItsGitSha1Etag()
    {
        string path = await _hub.Client().DownloadFileAsync(RepoId, "config.json", cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(Config, File.ReadAllBytes(path));
        Assert.Equal(Path.Combine(_hub.Storage(RepoId), "snapshots", _commit, "config.json"), path);
        Assert.Equal(_commit, File.ReadAllText(Path.Combine(_hub.Storage(RepoId), "refs", "main")));
        Assert.DoesNotContain(_hub.Server.Requests, r => r.ToCdn);
    }

    [Fact]
    public async Task DownloadFile_RenamedRepository_FollowsTheRelativeRedirectWithTheToken()
    {
        _repository.FormerId = "test-org/old-name";

        string path = await _hub.Client().DownloadFileAsync("test-org/old-name", "config.json", cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(Config, File.ReadAllBytes(path));
        Assert.Contains(_hub.Server.Requests, r => r.Method == "HEAD" && r.Path.StartsWith("/test-org/old-name/", StringComparison.Ordinal));
        Assert.All(_hub.Server.Requests.Where(r => !r.ToCdn), r => Assert.NotNull(r.Authorization));
    }

    [Fact]
    public async Task Download_AfterADroppedConnection_ResumesWithARangeRequest()
    {
        _hub.Server.DropConnection(r => r.ToCdn, afterBytes: 70_000);

        string path = await _hub.Client().DownloadFileAsync(RepoId, "unet/weights.pb", cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(Weights, File.ReadAllBytes(path));
        RecordedRequest[] gets = [.. _hub.Server.Requests.Where(r => r.ToCdn)];
        Assert.Equal(2, gets.Length);
        Assert.Null(gets[0].Range);
        Assert.Equal("bytes=70000-", gets[1].Range);
    }

    [Fact]
    public async Task Download_AfterSeveralDrops_ResumesEachTimeFromWhereItStopped()
    {
        _hub.Server.DropConnection(r => r.ToCdn, afterBytes: 30_000, times: 4);

        string path = await _hub.Client().DownloadFileAsync(RepoId, "unet/weights.pb", cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(Weights, File.ReadAllBytes(path));
        Assert.Equal([null, "bytes=30000-", "bytes=60000-", "bytes=90000-", "bytes=120000-"], _hub.Server.Requests.Where(r => r.ToCdn).Select(r => r.Range));
    }

    [Fact]
    public async Task Download_WhenTheServerAnswersARangeRequestWith200_RestartsFromTheFirstByte()
    {
        _hub.Server.DropConnection(r => r.ToCdn, afterBytes: 50_000);
        _hub.Server.IgnoreRange(r => r.ToCdn && r.Range is not null);
        var reports = new List<HubDownloadProgress>();

        string path = await _hub.Client().DownloadFileAsync(
            RepoId, "unet/weights.pb", progress: new SynchronousProgress<HubDownloadProgress>(reports.Add), cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(Weights, File.ReadAllBytes(path));
        Assert.Equal([null, "bytes=50000-"], _hub.Server.Requests.Where(r => r.ToCdn).Select(r => r.Range));
        Assert.Equal(Weights.Length, reports[^1].BytesDownloaded);
        Assert.Contains(_hub.Logger.Collector.GetSnapshot(), log => log.Message.Contains("restarting it from the first byte", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Download_WhenTheConnectionKeepsDropping_GivesUpWithAClearErrorAndLeavesNothing()
    {
        _hub.Server.DropConnection(r => r.ToCdn, afterBytes: 0, times: int.MaxValue);

        var error = await Assert.ThrowsAsync<HubUnavailableException>(
            () => _hub.Client(_hub.Options() with { MaxResumeAttempts = 2 }).DownloadFileAsync(RepoId, "unet/weights.pb", cancellationToken: TestContext.Current.CancellationToken));

        Assert.Contains("kept dropping", error.Message, StringComparison.Ordinal);
        Assert.Equal(3, _hub.Server.Requests.Count(r => r.ToCdn));
        Assert.Empty(HubTestContext.FilesUnder(Path.Combine(_hub.Storage(RepoId), "blobs")));
        Assert.Empty(HubTestContext.FilesUnder(Path.Combine(_hub.Storage(RepoId), "snapshots")));
    }

    [Fact]
    public async Task Download_OfACorruptedBlob_IsRejectedAndLeavesNothingInBlobsOrSnapshots()
    {
        _hub.Server.Corrupt(r => r.ToCdn);

        var error = await Assert.ThrowsAsync<HubIntegrityException>(
            () => _hub.Client().DownloadSnapshotAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken));

        FakeFile weights = _repository.File(_commit, "unet/weights.pb");
        Assert.Equal("unet/weights.pb", error.FilePath);
        Assert.Contains(weights.Sha256, error.Message, StringComparison.Ordinal);
        string storage = _hub.Storage(RepoId);
        Assert.DoesNotContain(HubTestContext.FilesUnder(Path.Combine(storage, "blobs")), p => p.StartsWith(weights.Sha256, StringComparison.Ordinal));
        Assert.DoesNotContain("unet/weights.pb", HubTestContext.FilesUnder(Path.Combine(storage, "snapshots", _commit)));
    }

    [Fact]
    public async Task Download_OfACorruptedPlainFile_IsRejectedByItsGitSha1()
    {
        _hub.Server.Corrupt(r => !r.ToCdn && r.Method == "GET" && r.Path.EndsWith("/config.json", StringComparison.Ordinal));

        var error = await Assert.ThrowsAsync<HubIntegrityException>(
            () => _hub.Client().DownloadFileAsync(RepoId, "config.json", cancellationToken: TestContext.Current.CancellationToken));

        Assert.Contains("git sha1", error.Message, StringComparison.Ordinal);
        Assert.Empty(HubTestContext.FilesUnder(Path.Combine(_hub.Storage(RepoId), "blobs")));
    }

    [Fact]
    public async Task Download_WhenACachedFileHasTheWrongSize_DownloadsItAgain()
    {
        HubClient client = _hub.Client();
        string snapshot = await client.DownloadSnapshotAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken);
        string blob = Path.Combine(_hub.Storage(RepoId), "blobs", _repository.File(_commit, "unet/weights.pb").Sha256);
        File.WriteAllBytes(blob, Weights[..1000]);

        await client.DownloadSnapshotAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(Weights, File.ReadAllBytes(Path.Combine(snapshot, "unet", "weights.pb")));
    }

    [Fact]
    public async Task TwoClientsDownloadingTheSameModelAtOnce_EndWithOneCorrectCopy()
    {
        // Slow the CDN so that both downloads overlap.
        _hub.Server.Delay(r => r.ToCdn, TimeSpan.FromMilliseconds(300));
        HubClient first = _hub.Client();
        HubClient second = _hub.Client();

        string[] snapshots = await Task.WhenAll(
            Task.Run(() => first.DownloadSnapshotAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken)),
            Task.Run(() => second.DownloadSnapshotAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken)));

        Assert.Equal(snapshots[0], snapshots[1]);
        Assert.Equal(Weights, File.ReadAllBytes(Path.Combine(snapshots[0], "unet", "weights.pb")));
        Assert.Equal(1, _hub.Server.Requests.Count(r => r.IsContentGet(_repository.File(_commit, "unet/weights.pb"))));
        string[] blobs = HubTestContext.FilesUnder(Path.Combine(_hub.Storage(RepoId), "blobs"));
        Assert.Equal(3, blobs.Length);
        Assert.DoesNotContain(blobs, b => b.Contains(".incomplete", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Download_WaitsWhileAnotherProcessHoldsTheBlobLock()
    {
        FakeFile weights = _repository.File(_commit, "unet/weights.pb");
        string lockPath = Path.Combine(_hub.CacheDirectory, ".locks", "models--test-org--tiny-model", weights.Sha256 + ".lock");
        Directory.CreateDirectory(Path.GetDirectoryName(lockPath)!);
        Task<string> download;

        // FileShare.None takes flock(LOCK_EX), the lock Python's filelock takes on the same file.
        using (new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
        {
            download = _hub.Client().DownloadFileAsync(RepoId, "unet/weights.pb", cancellationToken: TestContext.Current.CancellationToken);
            await Task.Delay(400, TestContext.Current.CancellationToken);
            Assert.False(download.IsCompleted);
            Assert.DoesNotContain(_hub.Server.Requests, r => r.ToCdn);
        }

        Assert.Equal(Weights, File.ReadAllBytes(await download));
    }

    [Fact]
    public async Task Download_WithoutSymbolicLinks_MovesNewBlobsIntoTheSnapshot()
    {
        string snapshot = await _hub.Client(_hub.Options() with { UseSymbolicLinks = false })
            .DownloadSnapshotAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken);

        var weights = new FileInfo(Path.Combine(snapshot, "unet", "weights.pb"));
        Assert.Null(weights.LinkTarget);
        Assert.Equal(Weights, File.ReadAllBytes(weights.FullName));
        Assert.Empty(HubTestContext.FilesUnder(Path.Combine(_hub.Storage(RepoId), "blobs")));
    }

    [Fact]
    public async Task Download_Cancelled_LeavesNoPartialFile()
    {
        _hub.Server.Delay(r => r.ToCdn, TimeSpan.FromSeconds(5));
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cancellation.CancelAfter(TimeSpan.FromMilliseconds(300));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => _hub.Client().DownloadSnapshotAsync(RepoId, cancellationToken: cancellation.Token));

        Assert.DoesNotContain(HubTestContext.FilesUnder(Path.Combine(_hub.Storage(RepoId), "blobs")), p => p.Contains(".incomplete", StringComparison.Ordinal));
        Assert.DoesNotContain("unet/weights.pb", HubTestContext.FilesUnder(Path.Combine(_hub.Storage(RepoId), "snapshots", _commit)));
    }
}
