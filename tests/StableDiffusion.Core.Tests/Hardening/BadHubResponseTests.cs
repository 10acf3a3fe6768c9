using System.Text;
using StableDiffusion.Core.Tests.Hardening.Drills;
using StableDiffusion.Core.Tests.Hardening.Support;
using StableDiffusion.Core.Tests.Hub.FakeHub;
using StableDiffusion.Hub.Tests.FakeHub;
using StableDiffusion.Hub;
using StableDiffusion.Pipelines;
using Xunit;

namespace StableDiffusion.Core.Tests.Hardening;

/// <summary>
/// Hub answers that are truncated, corrupt, too long, redirect somewhere they should not, or name files outside the cache,
/// met through <c>FromPretrainedAsync</c>: each fails with a specific <see cref="HubException"/> naming the file and the
/// problem, and the cache never keeps a partial or wrong blob where a complete one is expected. (The Hub tests cover the
/// client's own API; these go through the pipeline.)
/// </summary>
[Trait("Category", "Hardening")]
public sealed class BadHubResponseTests : IAsyncLifetime
{
    private const string RepoId = "hardening/bad-hub";

    private static readonly Dictionary<string, BadAnswer> Corpus = new(StringComparer.Ordinal)
    {
        ["every transfer of the weights truncated"] = new(
            (hub, repository) => hub.Server.DropConnection(r => r.Path == "/cdn/" + Weights(repository).Sha256, afterBytes: 0, times: int.MaxValue),
            typeof(HubUnavailableException), "kept dropping", "unet/weights.pb", "0 of 300000 bytes"),
        ["weights with the wrong checksum"] = new(
            (hub, repository) => hub.Server.Corrupt(r => r.Path == "/cdn/" + Weights(repository).Sha256),
            typeof(HubIntegrityException), "is corrupt", "unet/weights.pb", "sha256"),
        ["a configuration with the wrong git hash"] = new(
            (hub, _) => hub.Server.Corrupt(r => !r.ToCdn && r.Method == "GET" && r.Path.EndsWith("/scheduler/scheduler_config.json", StringComparison.Ordinal)),
            typeof(HubIntegrityException), "is corrupt", "scheduler/scheduler_config.json", "git sha1"),
        ["weights longer than announced"] = new((hub, repository) =>
        {
            FakeFile weights = Weights(repository);
            hub.Server.FailWith(r => r.Method == "HEAD" && r.Path.EndsWith("/unet/weights.pb", StringComparison.Ordinal), 1, 302,
                ("X-Repo-Commit", repository.Resolve("main")!), ("X-Linked-Etag", $"\"{weights.Sha256}\""), ("X-Linked-Size", "1000"), ("ETag", $"\"{weights.GitSha1}\""),
                ("Location", $"{hub.Server.CdnEndpoint.AbsoluteUri}cdn/{weights.Sha256}"));
        }, typeof(HubIntegrityException), "longer than the 1000 bytes", "unet/weights.pb"),
        ["a component folder outside the cache"] = new(
            (_, repository) => repository.AddCommit(WithEvilComponent(), FakeContent.IsLfs, "main"),
            typeof(HubIntegrityException), "'../../escaped'", "Refused", "outside the cache folder"),
        ["a redirect to a file URL"] = new(
            (hub, _) => hub.Server.FailWith(r => r.Method == "GET" && !r.ToCdn && r.Path.EndsWith("/model_index.json", StringComparison.Ordinal), 1, 302,
                ("Location", "file:///etc/passwd")),
            typeof(HubIntegrityException), "model_index.json", "file:///etc/passwd", "HTTP(S) only"),
        ["a redirect loop"] = new(
            (hub, _) => hub.Server.FailWith(r => r.Method == "GET" && !r.ToCdn && r.Path.EndsWith("/model_index.json", StringComparison.Ordinal), int.MaxValue, 302,
                ("Location", "/hardening/bad-hub/resolve/main/model_index.json")),
            typeof(HubIntegrityException), "More than 10 redirects", "model_index.json"),
        ["a redirect to another host serving another file"] = new((hub, repository) =>
        {
            FakeFile other = Weights(repository);
            hub.Server.FailWith(r => r.Method == "GET" && !r.ToCdn && r.Path.EndsWith("/model_index.json", StringComparison.Ordinal), 1, 302,
                ("Location", $"{hub.Server.CdnEndpoint.AbsoluteUri}cdn/{other.Sha256}"));
        }, typeof(HubIntegrityException), "model_index.json", "longer than"),
        ["an answer that is not from a Hub"] = new(
            (hub, _) => hub.Server.FailWith(r => r.Method == "HEAD", 1, 200),
            typeof(HubException), "does not look like a Hugging Face Hub answer"),
        ["a model_index.json that is not JSON"] = new((_, repository) =>
        {
            Dictionary<string, byte[]> files = FakeModels.StableDiffusionRepository();
            files["model_index.json"] = Encoding.UTF8.GetBytes("{ \"_class_name\": ");
            repository.AddCommit(files, FakeContent.IsLfs, "main");
        }, typeof(HubIntegrityException), "model_index.json"),
    };

    private HubTestContext _hub = null!;
    private FakeRepository _repository = null!;

    public static TheoryData<string> Cases() => [.. Corpus.Keys];

    public async ValueTask InitializeAsync()
    {
        _hub = await HubTestContext.StartAsync();
        _repository = _hub.Server.AddRepository(RepoId);
        _repository.AddCommit(FakeModels.StableDiffusionRepository(), FakeContent.IsLfs, "main");
    }

    public async ValueTask DisposeAsync() => await _hub.DisposeAsync();

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task BadHubAnswer_FailsWithASpecificErrorAndLeavesNoPartialBlob(string name)
    {
        BadAnswer bad = Corpus[name];
        bad.Arrange(_hub, _repository);
        var options = new StableDiffusionPipelineOptions { Hub = _hub.Options() with { MaxResumeAttempts = 2 } };

        Exception? error = await Record.ExceptionAsync(async () =>
        {
            using StableDiffusionPipeline pipeline = await StableDiffusionPipeline.FromPretrainedAsync(RepoId, options, TestContext.Current.CancellationToken);
        });

        ExceptionAssert.Specific(error, bad.Exception, bad.Message);
        string commit = _repository.Resolve("main")!;
        Assert.Empty(HubCacheCheck.Problems(_hub.CacheDirectory, RepoId, commit, _repository.Files(commit)));
    }

    private static FakeFile Weights(FakeRepository repository) => repository.File(repository.Resolve("main")!, "unet/weights.pb");

    private static Dictionary<string, byte[]> WithEvilComponent()
    {
        Dictionary<string, byte[]> files = FakeModels.StableDiffusionRepository();
        files["model_index.json"] = Encoding.UTF8.GetBytes(FakeModels.ModelIndex.Replace("\"image_encoder\": [null, null]",
            "\"../../escaped\": [\"diffusers\", \"OnnxRuntimeModel\"]", StringComparison.Ordinal));
        files["../../escaped/model.onnx"] = OnnxBytes.ModelWithEmbeddedWeights();
        return files;
    }

    /// <summary>A bad Hub answer: how to set it up, and the error that must come out.</summary>
    /// <param name="Arrange">Sets up the fake Hub (a fault, or another commit on main).</param>
    /// <param name="Exception">The exact exception type expected.</param>
    /// <param name="Message">What the message must name.</param>
    private sealed record BadAnswer(Action<HubTestContext, FakeRepository> Arrange, Type Exception, params string[] Message);
}
