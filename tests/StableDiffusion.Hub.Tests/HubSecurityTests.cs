using System.Text;
using StableDiffusion.Hub.Tests.FakeHub;
using StableDiffusion.Hub;
using Xunit;

namespace StableDiffusion.Hub.Tests;

/// <summary>Names and links that would leave the cache are refused before anything is written.</summary>
[Trait("Area", "Hub")]
public sealed class HubSecurityTests : IAsyncLifetime
{
    private const string RepoId = "evil-org/model";

    private HubTestContext _hub = null!;
    private FakeRepository _repository = null!;

    public async ValueTask InitializeAsync()
    {
        _hub = await HubTestContext.StartAsync();
        _repository = _hub.Server.AddRepository(RepoId);
    }

    public async ValueTask DisposeAsync() => await _hub.DisposeAsync();

    [Theory]
    [InlineData("../../../escaped.txt")]
    [InlineData("unet/../../escaped.txt")]
    [InlineData("/tmp/escaped.txt")]
    [InlineData("..\\..\\escaped.txt")]
    [InlineData("C:/escaped.txt")]
    public async Task RepositoryFileLeavingTheCache_IsRefusedAndNothingIsWritten(string evilPath)
    {
        _repository.AddCommit(new Dictionary<string, byte[]> { ["config.json"] = "{}"u8.ToArray(), [evilPath] = "pwned"u8.ToArray() }, null, "main");

        var error = await Assert.ThrowsAsync<HubIntegrityException>(
            () => _hub.Client().DownloadSnapshotAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken));

        Assert.Equal(evilPath, error.FilePath);
        Assert.Contains("Refused", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(_hub.Server.Requests, r => r.Method is "HEAD" or "GET" && r.Path.Contains("/resolve/", StringComparison.Ordinal));
        Assert.Empty(HubTestContext.FilesUnder(Path.Combine(_hub.Storage(RepoId), "blobs")));
        Assert.False(File.Exists(Path.Combine(_hub.CacheDirectory, "escaped.txt")));
    }

    [Fact]
    public async Task RefusedFileOutsideTheAllowPatterns_DoesNotBlockTheRest()
    {
        _repository.AddCommit(new Dictionary<string, byte[]> { ["config.json"] = "{}"u8.ToArray(), ["../escaped.txt"] = "pwned"u8.ToArray() }, null, "main");

        string snapshot = await _hub.Client().DownloadSnapshotAsync(RepoId, allowPatterns: ["*.json"], cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(["config.json"], HubTestContext.FilesUnder(snapshot));
    }

    [Fact]
    public async Task CachedSnapshotLinkingOutOfTheCache_IsRefused()
    {
        string snapshot = HubTestContext.WritePythonCache(_hub.CacheDirectory, RepoId, "main", out _);
        string outside = Path.Combine(_hub.CacheDirectory, "..", Path.GetFileName(_hub.CacheDirectory) + "-secret.txt");
        File.WriteAllText(outside, "secret");
        try
        {
            string config = Path.Combine(snapshot, "config.json");
            File.Delete(config);
            File.CreateSymbolicLink(config, Path.GetRelativePath(snapshot, outside));
            HubClient offline = _hub.Client(_hub.Options() with { Offline = true });

            var error = await Assert.ThrowsAsync<HubIntegrityException>(
                () => offline.DownloadFileAsync(RepoId, "config.json", cancellationToken: TestContext.Current.CancellationToken));

            Assert.Contains("outside the repository's blobs folder", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(outside);
        }
    }

    [Fact]
    public async Task CachedSnapshotFolderThatIsALink_IsRefused()
    {
        string snapshot = HubTestContext.WritePythonCache(_hub.CacheDirectory, RepoId, "main", out _);
        string elsewhere = Directory.CreateTempSubdirectory("elsewhere").FullName;
        try
        {
            File.WriteAllText(Path.Combine(elsewhere, "model.onnx"), "not from the hub");
            Directory.Delete(Path.Combine(snapshot, "unet"), recursive: true);
            Directory.CreateSymbolicLink(Path.Combine(snapshot, "unet"), elsewhere);

            await Assert.ThrowsAsync<HubIntegrityException>(
                () => _hub.Client(_hub.Options() with { Offline = true }).DownloadFileAsync(RepoId, "unet/model.onnx", cancellationToken: TestContext.Current.CancellationToken));
        }
        finally
        {
            Directory.Delete(elsewhere, recursive: true);
        }
    }

    [Fact]
    public async Task EtagThatIsNotAFileName_IsRefused()
    {
        _repository.AddCommit(new Dictionary<string, byte[]> { ["config.json"] = "{}"u8.ToArray() }, null, "main");
        string commit = _repository.Resolve("main")!;
        _hub.Server.FailWith(r => r.Method == "HEAD", 1, 200, ("X-Repo-Commit", commit), ("ETag", "\"../../../../evil\""), ("X-Linked-Size", "2"));

        var error = await Assert.ThrowsAsync<HubIntegrityException>(
            () => _hub.Client().DownloadFileAsync(RepoId, "config.json", cancellationToken: TestContext.Current.CancellationToken));

        Assert.Contains("ETag", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RedirectToAnotherHostPort_IsFollowedWithoutTheToken()
    {
        _repository.AddCommit(new Dictionary<string, byte[]> { ["config.json"] = Encoding.UTF8.GetBytes("{}") }, null, "main");
        FakeFile config = _repository.File(_repository.Resolve("main")!, "config.json");
        // The Hub answers the GET of a plain file with an absolute redirect to another host:port (the CDN port).
        _hub.Server.FailWith(
            r => r.Method == "GET" && !r.ToCdn && r.Path.EndsWith("/config.json", StringComparison.Ordinal),
            1,
            302,
            ("Location", $"{_hub.Server.CdnEndpoint.AbsoluteUri}cdn/{config.Sha256}"));

        string path = await _hub.Client().DownloadFileAsync(RepoId, "config.json", cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal("{}", File.ReadAllText(path));
        RecordedRequest redirected = Assert.Single(_hub.Server.Requests, r => r.ToCdn);
        Assert.Null(redirected.Authorization);
        Assert.All(_hub.Server.Requests.Where(r => !r.ToCdn), r => Assert.NotNull(r.Authorization));
    }
}
