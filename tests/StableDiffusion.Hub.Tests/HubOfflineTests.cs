using System.Security.Cryptography;
using System.Text;
using StableDiffusion.Hub.Tests.FakeHub;
using StableDiffusion.Hub;
using Xunit;

namespace StableDiffusion.Hub.Tests;

/// <summary>Offline mode, a cache written by Python found without network, and the fallback to the cache when the Hub fails.</summary>
[Trait("Area", "Hub")]
public sealed class HubOfflineTests : IAsyncLifetime
{
    private const string RepoId = "test-org/offline-model";

    private HubTestContext _hub = null!;
    private string _commit = null!;

    public async ValueTask InitializeAsync()
    {
        _hub = await HubTestContext.StartAsync();
        _commit = _hub.Server.AddRepository(RepoId).AddCommit(
            new Dictionary<string, byte[]> { ["config.json"] = "{}"u8.ToArray(), ["unet/model.onnx"] = FakeContent.Bytes(5000, 1) },
            p => p.EndsWith(".onnx", StringComparison.Ordinal),
            "main");
    }

    public async ValueTask DisposeAsync() => await _hub.DisposeAsync();

    [Fact]
    public async Task Offline_AfterADownload_ReturnsTheSnapshotWithoutAnyRequest()
    {
        string online = await _hub.Client().DownloadSnapshotAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken);
        int requests = _hub.Server.Requests.Count;

        string offline = await _hub.Client(_hub.Options() with { Offline = true }).DownloadSnapshotAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken);
        string file = await _hub.Client(_hub.Options() with { Offline = true }).DownloadFileAsync(RepoId, "unet/model.onnx", cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(online, offline);
        Assert.Equal(Path.Combine(online, "unet", "model.onnx"), file);
        Assert.Equal(requests, _hub.Server.Requests.Count);
    }

    [Fact]
    public async Task Offline_WithEmptyCache_ThrowsNamingTheMissingRef()
    {
        var error = await Assert.ThrowsAsync<HubOfflineException>(
            () => _hub.Client(_hub.Options() with { Offline = true }).DownloadSnapshotAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken));

        Assert.Equal(["refs/main"], error.MissingPaths);
        Assert.Contains("refs/main", error.Message, StringComparison.Ordinal);
        Assert.Contains(RepoId, error.Message, StringComparison.Ordinal);
        Assert.Contains("HF_HUB_OFFLINE", error.Message, StringComparison.Ordinal);
        Assert.Empty(_hub.Server.Requests);
    }

    [Fact]
    public async Task Offline_WithAPartialSnapshot_ThrowsNamingTheMissingFile()
    {
        string snapshot = await _hub.Client().DownloadSnapshotAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken);
        File.Delete(Path.Combine(snapshot, "unet", "model.onnx"));

        var error = await Assert.ThrowsAsync<HubOfflineException>(
            () => _hub.Client(_hub.Options() with { Offline = true }).DownloadSnapshotAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken));

        Assert.Equal(["unet/model.onnx"], error.MissingPaths);
        Assert.Contains("unet/model.onnx", error.Message, StringComparison.Ordinal);
        Assert.Contains(_commit, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Offline_FileMissing_ThrowsNamingIt()
    {
        await _hub.Client().DownloadFileAsync(RepoId, "config.json", cancellationToken: TestContext.Current.CancellationToken);

        var error = await Assert.ThrowsAsync<HubOfflineException>(
            () => _hub.Client(_hub.Options() with { Offline = true }).DownloadFileAsync(RepoId, "unet/model.onnx", cancellationToken: TestContext.Current.CancellationToken));

        Assert.Equal(["unet/model.onnx"], error.MissingPaths);
    }

    [Fact]
    public async Task CacheWrittenByPython_IsFoundOfflineAndWithoutNetwork()
    {
        string snapshot = HubTestContext.WritePythonCache(_hub.CacheDirectory, "python-org/python-model", "main", out string commit);

        string offline = await _hub.Client(_hub.Options() with { Offline = true })
            .DownloadSnapshotAsync("python-org/python-model", cancellationToken: TestContext.Current.CancellationToken);
        string unreachable = await _hub.Client(_hub.Options() with { Endpoint = FakeHubServer.UnreachableEndpoint() })
            .DownloadSnapshotAsync("python-org/python-model", cancellationToken: TestContext.Current.CancellationToken);
        string byCommit = await _hub.Client(_hub.Options() with { Endpoint = FakeHubServer.UnreachableEndpoint() })
            .DownloadFileAsync("python-org/python-model", "unet/model.onnx", commit, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(snapshot, offline);
        Assert.Equal(snapshot, unreachable);
        Assert.Equal("weights of the unet", File.ReadAllText(byCommit));
        Assert.Equal("{\"a\": 1}", File.ReadAllText(Path.Combine(offline, "config.json")));
        Assert.Contains(_hub.Logger.Collector.GetSnapshot(), log => log.Message.Contains("using the cached snapshot", StringComparison.Ordinal));
    }

    [Fact]
    public async Task NoNetwork_AndNothingCached_ThrowsUnavailableSayingSo()
    {
        var error = await Assert.ThrowsAsync<HubUnavailableException>(
            () => _hub.Client(_hub.Options() with { Endpoint = FakeHubServer.UnreachableEndpoint(), MaxRetries = 1 })
                .DownloadSnapshotAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken));

        Assert.Contains("Could not reach the Hub", error.Message, StringComparison.Ordinal);
        Assert.Contains("network", error.Message, StringComparison.Ordinal);
        Assert.IsType<HttpRequestException>(error.InnerException);
    }

    [Fact]
    public async Task HubDown_WithTheSnapshotCached_FallsBackToTheCacheWithoutRetrying()
    {
        string online = await _hub.Client().DownloadSnapshotAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken);
        _hub.Server.FailWith(_ => true, int.MaxValue, 503);
        int before = _hub.Server.Requests.Count;

        string fallback = await _hub.Client().DownloadSnapshotAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(online, fallback);
        Assert.Equal(1, _hub.Server.Requests.Count - before);
    }

    [Fact]
    public async Task HubDown_WithAPartialSnapshot_ThrowsTheHubErrorNamingWhatIsMissing()
    {
        string snapshot = await _hub.Client().DownloadSnapshotAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken);
        File.Delete(Path.Combine(snapshot, "config.json"));
        _hub.Server.FailWith(_ => true, int.MaxValue, 503);

        var error = await Assert.ThrowsAsync<HubUnavailableException>(
            () => _hub.Client().DownloadSnapshotAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken));

        Assert.Contains("503", error.Message, StringComparison.Ordinal);
        Assert.Contains("config.json", error.Message, StringComparison.Ordinal);
    }
}
