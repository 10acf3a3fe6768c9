using System.Text;
using StableDiffusion.Hub.Tests.FakeHub;
using StableDiffusion.Hub;
using Xunit;

namespace StableDiffusion.Hub.Tests;

/// <summary>Revisions by branch, tag, commit and pull-request ref, and paginated listings.</summary>
[Trait("Area", "Hub")]
public sealed class HubRevisionTests : IAsyncLifetime
{
    private const string RepoId = "test-org/versions";

    private HubTestContext _hub = null!;
    private FakeRepository _repository = null!;
    private string _v1 = null!;
    private string _v2 = null!;

    public async ValueTask InitializeAsync()
    {
        _hub = await HubTestContext.StartAsync();
        _repository = _hub.Server.AddRepository(RepoId);
        _v1 = _repository.AddCommit(Files("one"), null, "v1.0");
        _v2 = _repository.AddCommit(Files("two"), null, "main");
        _repository.SetRef("refs/pr/1", _v1);
    }

    public async ValueTask DisposeAsync() => await _hub.DisposeAsync();

    [Fact]
    public async Task Branch_ResolvesThroughTheRevisionApiAndIsRecordedInRefs()
    {
        string snapshot = await _hub.Client().DownloadSnapshotAsync(RepoId, "main", cancellationToken: TestContext.Current.CancellationToken);

        Assert.EndsWith(_v2, snapshot, StringComparison.Ordinal);
        Assert.Equal("two", File.ReadAllText(Path.Combine(snapshot, "version.txt")));
        Assert.Equal(_v2, File.ReadAllText(Path.Combine(_hub.Storage(RepoId), "refs", "main")));
    }

    [Fact]
    public async Task Tag_ResolvesToItsCommit()
    {
        string snapshot = await _hub.Client().DownloadSnapshotAsync(RepoId, "v1.0", cancellationToken: TestContext.Current.CancellationToken);

        Assert.EndsWith(_v1, snapshot, StringComparison.Ordinal);
        Assert.Equal("one", File.ReadAllText(Path.Combine(snapshot, "version.txt")));
        Assert.Equal(_v1, File.ReadAllText(Path.Combine(_hub.Storage(RepoId), "refs", "v1.0")));
    }

    [Fact]
    public async Task CommitHash_NeedsNoRevisionLookupAndWritesNoRef()
    {
        string snapshot = await _hub.Client().DownloadSnapshotAsync(RepoId, _v1, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal("one", File.ReadAllText(Path.Combine(snapshot, "version.txt")));
        Assert.DoesNotContain(_hub.Server.Requests, r => r.Path.Contains("/revision/", StringComparison.Ordinal));
        Assert.Contains(_hub.Server.Requests, r => r.Path.EndsWith($"/tree/{_v1}", StringComparison.Ordinal));
        Assert.False(Directory.Exists(Path.Combine(_hub.Storage(RepoId), "refs")));
    }

    [Fact]
    public async Task PullRequestRef_IsPercentEncodedInUrlsAndNestedInRefs()
    {
        string snapshot = await _hub.Client().DownloadSnapshotAsync(RepoId, "refs/pr/1", cancellationToken: TestContext.Current.CancellationToken);

        Assert.EndsWith(_v1, snapshot, StringComparison.Ordinal);
        Assert.Contains(_hub.Server.Requests, r => r.Path == $"/api/models/{RepoId}/revision/refs%2Fpr%2F1");
        Assert.Equal(_v1, File.ReadAllText(Path.Combine(_hub.Storage(RepoId), "refs", "refs", "pr", "1")));
    }

    [Fact]
    public async Task WhenABranchMoves_TheRefFollowsAndBothSnapshotsStay()
    {
        HubClient client = _hub.Client();
        string first = await client.DownloadSnapshotAsync(RepoId, "main", cancellationToken: TestContext.Current.CancellationToken);
        _repository.SetRef("main", _v1);

        string second = await client.DownloadSnapshotAsync(RepoId, "main", cancellationToken: TestContext.Current.CancellationToken);

        Assert.NotEqual(first, second);
        Assert.Equal(_v1, File.ReadAllText(Path.Combine(_hub.Storage(RepoId), "refs", "main")));
        Assert.Equal("two", File.ReadAllText(Path.Combine(first, "version.txt")));
        Assert.Equal("one", File.ReadAllText(Path.Combine(second, "version.txt")));
    }

    [Fact]
    public async Task PaginatedListing_IsFollowedToTheLastPage()
    {
        var files = Enumerable.Range(0, 7).ToDictionary(i => $"shard-{i}.txt", i => Encoding.UTF8.GetBytes($"shard {i}"));
        string commit = _repository.AddCommit(files, null, "many");
        _hub.Server.TreePageSize = 3;

        string snapshot = await _hub.Client().DownloadSnapshotAsync(RepoId, "many", cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(files.Keys.Order(StringComparer.Ordinal), HubTestContext.FilesUnder(snapshot));
        Assert.Equal(3, _hub.Server.Requests.Count(r => r.Path.EndsWith($"/tree/{commit}", StringComparison.Ordinal)));
    }

    private static Dictionary<string, byte[]> Files(string version) => new()
    {
        ["version.txt"] = Encoding.UTF8.GetBytes(version),
        ["config.json"] = Encoding.UTF8.GetBytes($$"""{"version": "{{version}}"}"""),
    };
}
