using System.Net;
using StableDiffusion.Hub.Tests.FakeHub;
using StableDiffusion.Hub;
using Xunit;

namespace StableDiffusion.Hub.Tests;

/// <summary>401, 403, 404, 429 and 5xx answers: retries with backoff, then errors that say what to do.</summary>
[Trait("Area", "Hub")]
public sealed class HubErrorTests : IAsyncLifetime
{
    private const string RepoId = "test-org/errors";

    private HubTestContext _hub = null!;
    private FakeRepository _repository = null!;

    public async ValueTask InitializeAsync()
    {
        _hub = await HubTestContext.StartAsync();
        _repository = _hub.Server.AddRepository(RepoId);
        _repository.AddCommit(new Dictionary<string, byte[]> { ["config.json"] = "{}"u8.ToArray() }, null, "main");
    }

    public async ValueTask DisposeAsync() => await _hub.DisposeAsync();

    [Fact]
    public async Task PrivateRepository_WithoutToken_Throws401MentioningHfToken()
    {
        _repository.AccessToken = "hf_private";

        var error = await Assert.ThrowsAsync<HubAuthenticationException>(
            () => _hub.Client(_hub.Options(token: null)).DownloadSnapshotAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken));

        Assert.Equal(HttpStatusCode.Unauthorized, error.StatusCode);
        Assert.Contains("HF_TOKEN", error.Message, StringComparison.Ordinal);
        Assert.Contains("No token was sent", error.Message, StringComparison.Ordinal);
        Assert.Contains("hf auth login", error.Message, StringComparison.Ordinal);
        Assert.Equal(RepoId, error.RepoId);
    }

    [Fact]
    public async Task PrivateRepository_WithItsToken_Downloads()
    {
        _repository.AccessToken = "hf_private";

        string snapshot = await _hub.Client(_hub.Options(token: "hf_private")).DownloadSnapshotAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken);

        Assert.True(File.Exists(Path.Combine(snapshot, "config.json")));
    }

    [Fact]
    public async Task GatedRepository_WithAnUnapprovedToken_Throws403SayingItIsGated()
    {
        _repository.GatedApprovedToken = "hf_approved";

        var error = await Assert.ThrowsAsync<HubAuthenticationException>(
            () => _hub.Client().DownloadSnapshotAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken));

        Assert.True(error.IsGated);
        Assert.Equal(HttpStatusCode.Forbidden, error.StatusCode);
        Assert.Contains("gated", error.Message, StringComparison.Ordinal);
        Assert.Contains("accept its conditions", error.Message, StringComparison.Ordinal);
        Assert.Contains($"{_hub.Server.Endpoint.AbsoluteUri}{RepoId}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MissingRepository_ThrowsNotFoundNamingTheRepository()
    {
        var error = await Assert.ThrowsAsync<HubNotFoundException>(
            () => _hub.Client().DownloadSnapshotAsync("test-org/does-not-exist", cancellationToken: TestContext.Current.CancellationToken));

        Assert.Equal(HubMissingItem.Repository, error.Missing);
        Assert.Contains("'test-org/does-not-exist'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MissingRevision_ThrowsNotFoundNamingTheRevision()
    {
        var error = await Assert.ThrowsAsync<HubNotFoundException>(
            () => _hub.Client().DownloadSnapshotAsync(RepoId, "no-such-branch", cancellationToken: TestContext.Current.CancellationToken));

        Assert.Equal(HubMissingItem.Revision, error.Missing);
        Assert.Equal("no-such-branch", error.Revision);
        Assert.Contains("'no-such-branch'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MissingCommit_ThrowsNotFoundNamingTheRevision()
    {
        var error = await Assert.ThrowsAsync<HubNotFoundException>(
            () => _hub.Client().DownloadSnapshotAsync(RepoId, new string('a', 40), cancellationToken: TestContext.Current.CancellationToken));

        Assert.Equal(HubMissingItem.Revision, error.Missing);
    }

    [Fact]
    public async Task MissingFile_ThrowsNotFoundNamingTheFile()
    {
        var error = await Assert.ThrowsAsync<HubNotFoundException>(
            () => _hub.Client().DownloadFileAsync(RepoId, "unet/missing.onnx", cancellationToken: TestContext.Current.CancellationToken));

        Assert.Equal(HubMissingItem.File, error.Missing);
        Assert.Equal("unet/missing.onnx", error.FilePath);
        Assert.Contains("'unet/missing.onnx'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RateLimited_ThenAvailable_WaitsRetryAfterAndSucceeds()
    {
        _hub.Server.FailWith(r => r.Path.Contains("/revision/", StringComparison.Ordinal), 1, 429, ("Retry-After", "1"));

        string snapshot = await _hub.Client().DownloadSnapshotAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken);

        Assert.True(File.Exists(Path.Combine(snapshot, "config.json")));
        RecordedRequest[] lookups = [.. _hub.Server.Requests.Where(r => r.Path.Contains("/revision/", StringComparison.Ordinal))];
        Assert.Equal(2, lookups.Length);
        Assert.True(lookups[1].At - lookups[0].At >= TimeSpan.FromMilliseconds(950), $"retried after {(lookups[1].At - lookups[0].At).TotalMilliseconds} ms");
        Assert.Contains(_hub.Logger.Collector.GetSnapshot(), log => log.Message.Contains("answered 429", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RateLimitHeader_WithNoRequestsLeft_IsHonoured()
    {
        _hub.Server.FailWith(r => r.Path.Contains("/tree/", StringComparison.Ordinal), 1, 429, ("RateLimit", "\"api\";r=0;t=1"));

        await _hub.Client().DownloadSnapshotAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken);

        RecordedRequest[] listings = [.. _hub.Server.Requests.Where(r => r.Path.Contains("/tree/", StringComparison.Ordinal))];
        Assert.True(listings[1].At - listings[0].At >= TimeSpan.FromMilliseconds(950));
    }

    [Fact]
    public async Task RateLimited_Persistently_ThrowsRateLimitedAfterTheConfiguredRetries()
    {
        _hub.Server.FailWith(r => r.Path.Contains("/revision/", StringComparison.Ordinal), int.MaxValue, 429, ("Retry-After", "0"));

        var error = await Assert.ThrowsAsync<HubRateLimitedException>(
            () => _hub.Client().DownloadSnapshotAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken));

        Assert.Equal(4, _hub.Server.Requests.Count(r => r.Path.Contains("/revision/", StringComparison.Ordinal)));
        Assert.Equal(TimeSpan.Zero, error.RetryAfter);
        Assert.Contains("429", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RetryAfterLongerThanAllowed_FailsAtOnce()
    {
        _hub.Server.FailWith(r => r.Path.Contains("/revision/", StringComparison.Ordinal), int.MaxValue, 429, ("Retry-After", "3600"));

        var error = await Assert.ThrowsAsync<HubRateLimitedException>(
            () => _hub.Client().DownloadSnapshotAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken));

        Assert.Equal(TimeSpan.FromHours(1), error.RetryAfter);
        Assert.Contains("wait 3600 s", error.Message, StringComparison.Ordinal);
        Assert.Single(_hub.Server.Requests);
    }

    [Theory]
    [InlineData(500)]
    [InlineData(502)]
    [InlineData(503)]
    [InlineData(504)]
    public async Task ServerError_Persistently_ThrowsUnavailableAfterTheConfiguredRetries(int status)
    {
        _hub.Server.FailWith(r => r.Path.Contains("/revision/", StringComparison.Ordinal), int.MaxValue, status);

        var error = await Assert.ThrowsAsync<HubUnavailableException>(
            () => _hub.Client().DownloadSnapshotAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken));

        Assert.Equal((HttpStatusCode)status, error.StatusCode);
        Assert.Equal(4, _hub.Server.Requests.Count);
        Assert.Contains($"answered {status}", error.Message, StringComparison.Ordinal);
        Assert.Contains("try again later", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ServerError_ThenAvailable_IsRetriedWithBackoff()
    {
        _hub.Server.FailWith(r => r.Method == "HEAD", 2, 502);

        string path = await _hub.Client().DownloadFileAsync(RepoId, "config.json", cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal("{}", File.ReadAllText(path));
        Assert.Equal(3, _hub.Server.Requests.Count(r => r.Method == "HEAD"));
    }

    [Fact]
    public async Task ServerError_DuringTheContentDownload_IsRetried()
    {
        _hub.Server.FailWith(r => r.Method == "GET" && r.Path.EndsWith("/config.json", StringComparison.Ordinal), 2, 503);

        string path = await _hub.Client().DownloadFileAsync(RepoId, "config.json", cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal("{}", File.ReadAllText(path));
    }

    [Fact]
    public async Task AnswerWithoutHubHeaders_ThrowsSayingItIsNotTheHub()
    {
        _hub.Server.FailWith(r => r.Method == "HEAD", 1, 200);

        var error = await Assert.ThrowsAsync<HubException>(
            () => _hub.Client().DownloadFileAsync(RepoId, "config.json", cancellationToken: TestContext.Current.CancellationToken));

        Assert.Contains("X-Repo-Commit", error.Message, StringComparison.Ordinal);
        Assert.Contains("HF_ENDPOINT", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task InvalidArguments_ThrowArgumentExceptionsBeforeAnyRequest()
    {
        HubClient client = _hub.Client();

        await Assert.ThrowsAnyAsync<ArgumentException>(() => client.DownloadSnapshotAsync("not a repo", cancellationToken: TestContext.Current.CancellationToken));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => client.DownloadSnapshotAsync(RepoId, "../../x", cancellationToken: TestContext.Current.CancellationToken));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => client.DownloadFileAsync(RepoId, "../secret", cancellationToken: TestContext.Current.CancellationToken));
        Assert.Empty(_hub.Server.Requests);
    }
}
