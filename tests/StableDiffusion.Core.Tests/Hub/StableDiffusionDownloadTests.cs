using StableDiffusion.Core.Tests.Hub.FakeHub;
using StableDiffusion.Hub.Tests.FakeHub;
using StableDiffusion.Hub;
using Xunit;

namespace StableDiffusion.Core.Tests.Hub;

/// <summary>What <c>FromPretrained</c> downloads from an ONNX export (<see cref="PipelineDownload"/>): exactly the files the pipeline loads, from the Hub or the cache.</summary>
[Trait("Area", "Hub")]
public sealed class StableDiffusionDownloadTests : IAsyncLifetime
{
    private const string RepoId = "onnx-org/sd-v1-5";

    private HubTestContext _hub = null!;
    private FakeRepository _repository = null!;
    private string _commit = null!;

    public async ValueTask InitializeAsync()
    {
        _hub = await HubTestContext.StartAsync();
        _repository = _hub.Server.AddRepository(RepoId);
        _commit = _repository.AddCommit(FakeModels.StableDiffusionRepository(), FakeContent.IsLfs, "main");
    }

    public async ValueTask DisposeAsync() => await _hub.DisposeAsync();

    [Fact]
    public async Task Download_FetchesOnlyWhatThePipelineNeeds_IncludingTheWeightsTheUnetNames()
    {
        string snapshot = await _hub.Client().DownloadStableDiffusionAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(Path.Combine(_hub.Storage(RepoId), "snapshots", _commit), snapshot);
        Assert.Equal(FakeModels.StableDiffusionSelection, HubTestContext.FilesUnder(snapshot).Where(p => !Directory.Exists(Path.Combine(snapshot, p))));
        foreach (string path in FakeModels.StableDiffusionSelection)
        {
            Assert.Equal(_repository.File(_commit, path).Content, File.ReadAllBytes(Path.Combine(snapshot, path)));
        }

        // Nothing else was even asked for.
        string[] requested = [.. _hub.Server.Requests.Where(r => r.Method == "HEAD").Select(r => r.Path[(r.Path.IndexOf(_commit, StringComparison.Ordinal) + _commit.Length + 1)..]).Order(StringComparer.Ordinal)];
        Assert.Equal(FakeModels.StableDiffusionSelection, requested);
        // Identical contents share one blob (the fake's four embedded-weight graphs are byte-identical).
        Assert.Equal(
            FakeModels.StableDiffusionSelection.Select(p => _repository.File(_commit, p).Etag).Distinct().Order(StringComparer.Ordinal),
            HubTestContext.FilesUnder(Path.Combine(_hub.Storage(RepoId), "blobs")));
    }

    [Fact]
    public async Task Download_FollowsTheExternalDataFileNameTheGraphGives()
    {
        string commit = _repository.AddCommit(FakeModels.StableDiffusionRepository(unetWeights: "model.onnx_data"), FakeContent.IsLfs, "onnx-data");

        string snapshot = await _hub.Client().DownloadStableDiffusionAsync(RepoId, "onnx-data", cancellationToken: TestContext.Current.CancellationToken);

        Assert.EndsWith(commit, snapshot, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(snapshot, "unet", "model.onnx_data")));
        Assert.False(File.Exists(Path.Combine(snapshot, "unet", "weights.pb")));
    }

    [Fact]
    public async Task Download_ReportsProgressOverAllFiles()
    {
        var reports = new List<HubDownloadProgress>();

        await _hub.Client().DownloadStableDiffusionAsync(RepoId, progress: new SynchronousProgress<HubDownloadProgress>(reports.Add), cancellationToken: TestContext.Current.CancellationToken);

        long expected = FakeModels.StableDiffusionSelection.Sum(p => (long)_repository.File(_commit, p).Content.Length);
        HubDownloadProgress last = reports.MaxBy(r => r.BytesDownloaded);
        Assert.Equal(expected, last.BytesDownloaded);
        Assert.Equal(expected, reports.Max(r => r.TotalBytes));
        Assert.Equal(13, reports.Max(r => r.FilesCompleted));
    }

    [Fact]
    public async Task Offline_AfterADownload_ReturnsTheSameFolder()
    {
        string online = await _hub.Client().DownloadStableDiffusionAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken);
        int before = _hub.Server.Requests.Count;

        string offline = await _hub.Client(_hub.Options() with { Offline = true }).DownloadStableDiffusionAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(online, offline);
        Assert.Equal(before, _hub.Server.Requests.Count);
    }

    [Fact]
    public async Task Offline_WithTheUnetWeightsMissing_ThrowsNamingThem()
    {
        string snapshot = await _hub.Client().DownloadStableDiffusionAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken);
        File.Delete(Path.Combine(snapshot, "unet", "weights.pb"));
        File.Delete(Path.Combine(snapshot, "tokenizer", "vocab.json"));

        var error = await Assert.ThrowsAsync<HubOfflineException>(
            () => _hub.Client(_hub.Options() with { Offline = true }).DownloadStableDiffusionAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken));

        Assert.Equal(["tokenizer/vocab.json", "unet/weights.pb"], error.MissingPaths.Order(StringComparer.Ordinal));
        Assert.Contains("unet/weights.pb", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Offline_WithoutAListingCache_StillFindsMissingGraphsAndWeights()
    {
        string snapshot = await _hub.Client().DownloadStableDiffusionAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken);
        File.Delete(Path.Combine(_hub.Storage(RepoId), "trees", _commit + ".json"));
        File.Delete(Path.Combine(snapshot, "vae_decoder", "model.onnx"));
        File.Delete(Path.Combine(snapshot, "unet", "weights.pb"));

        var error = await Assert.ThrowsAsync<HubOfflineException>(
            () => _hub.Client(_hub.Options() with { Offline = true }).DownloadStableDiffusionAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken));

        Assert.Equal(["unet/weights.pb", "vae_decoder/model.onnx"], error.MissingPaths.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task ResumedAfterAnInterruption_DownloadsOnlyWhatIsMissing()
    {
        FakeFile weights = _repository.File(_commit, "unet/weights.pb");
        _hub.Server.FailWith(r => r.ToCdn && r.Path.EndsWith(weights.Sha256, StringComparison.Ordinal), 1, 404);
        await Assert.ThrowsAsync<HubNotFoundException>(
            () => _hub.Client().DownloadStableDiffusionAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken));
        int before = _hub.Server.Requests.Count;

        string snapshot = await _hub.Client().DownloadStableDiffusionAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken);

        Assert.True(File.Exists(Path.Combine(snapshot, "unet", "weights.pb")));
        RecordedRequest[] second = [.. _hub.Server.Requests.Skip(before)];
        Assert.Single(second, r => r.ToCdn);
        Assert.Single(second, r => r.Method == "HEAD");
    }

    [Fact]
    public async Task RepositoryWithoutModelIndex_ThrowsNotFoundSayingItIsNotAPipeline()
    {
        _repository.AddCommit(new Dictionary<string, byte[]> { ["config.json"] = "{}"u8.ToArray() }, null, "main");

        var error = await Assert.ThrowsAsync<HubNotFoundException>(
            () => _hub.Client().DownloadStableDiffusionAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken));

        Assert.Equal("model_index.json", error.FilePath);
        Assert.Contains("not a diffusers pipeline", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GraphNamingWeightsTheRepositoryLacks_ThrowsNotFoundNamingThem()
    {
        Dictionary<string, byte[]> files = FakeModels.StableDiffusionRepository();
        files.Remove("unet/weights.pb");
        _repository.AddCommit(files, FakeContent.IsLfs, "main");

        var error = await Assert.ThrowsAsync<HubNotFoundException>(
            () => _hub.Client().DownloadStableDiffusionAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken));

        Assert.Equal("unet/weights.pb", error.FilePath);
        Assert.Contains("unet/model.onnx", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OnnxGraphNamingExternalDataOutsideItsFolder_IsRefused()
    {
        Dictionary<string, byte[]> files = FakeModels.StableDiffusionRepository();
        files["unet/model.onnx"] = OnnxBytes.ModelWithExternalData("../text_encoder/model.onnx");
        _repository.AddCommit(files, FakeContent.IsLfs, "main");

        var error = await Assert.ThrowsAsync<HubIntegrityException>(
            () => _hub.Client().DownloadStableDiffusionAsync(RepoId, cancellationToken: TestContext.Current.CancellationToken));

        Assert.Contains("unet/model.onnx", error.Message, StringComparison.Ordinal);
        Assert.Equal("../text_encoder/model.onnx", error.FilePath);
    }

    [Fact]
    public async Task StableDiffusionCacheWrittenByPython_IsFoundOffline()
    {
        string repo = "python-org/sd";
        string snapshot = HubTestContext.WritePythonCache(_hub.CacheDirectory, repo, "main", out _, FakeModels.StableDiffusionRepository()
            .Where(f => FakeModels.StableDiffusionSelection.Contains(f.Key)).ToDictionary());

        string found = await _hub.Client(_hub.Options() with { Offline = true }).DownloadStableDiffusionAsync(repo, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(snapshot, found);
    }
}
