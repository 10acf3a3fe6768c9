using Microsoft.Extensions.Logging.Testing;
using StableDiffusion.Core.Tests.Hub.FakeHub;
using StableDiffusion.Hub.Tests.FakeHub;
using StableDiffusion.Loading;
using StableDiffusion.Models;
using StableDiffusion.Pipelines;
using Xunit;

namespace StableDiffusion.Core.Tests.Hub;

/// <summary>
/// Which files of a repository in diffusers' PyTorch layout a pipeline takes (<see cref="StableDiffusionFiles.ForDiffusersRepo"/>),
/// and that a Hub download fetches exactly those: one variant of safetensors weights, configs, tokenizer and scheduler files.
/// </summary>
[Trait("Area", "Hub")]
[Trait("Area", "WeightsLoading")]
public sealed class DiffusersFileSelectionTests : IAsyncLifetime
{
    private const string RepoId = "stable-diffusion-v1-5/stable-diffusion-v1-5";

    private static readonly string[] Components = ["feature_extractor", "safety_checker", "scheduler", "text_encoder", "tokenizer", "unet", "vae"];

    /// <summary>What diffusers downloads from the SD 1.5 repository with <c>variant=None</c> (safetensors available).</summary>
    private static readonly string[] PlainSelection =
    [
        "feature_extractor/preprocessor_config.json",
        "model_index.json",
        "safety_checker/config.json",
        "safety_checker/model.safetensors",
        "scheduler/scheduler_config.json",
        "text_encoder/config.json",
        "text_encoder/model.safetensors",
        "tokenizer/merges.txt",
        "tokenizer/special_tokens_map.json",
        "tokenizer/tokenizer_config.json",
        "tokenizer/vocab.json",
        "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors",
        "vae/config.json",
        "vae/diffusion_pytorch_model.safetensors",
    ];

    /// <summary>What diffusers downloads from the SD 1.5 repository with <c>variant="fp16"</c>.</summary>
    private static readonly string[] Fp16Selection =
    [
        "feature_extractor/preprocessor_config.json",
        "model_index.json",
        "safety_checker/config.json",
        "safety_checker/model.fp16.safetensors",
        "scheduler/scheduler_config.json",
        "text_encoder/config.json",
        "text_encoder/model.fp16.safetensors",
        "tokenizer/merges.txt",
        "tokenizer/special_tokens_map.json",
        "tokenizer/tokenizer_config.json",
        "tokenizer/vocab.json",
        "unet/config.json",
        "unet/diffusion_pytorch_model.fp16.safetensors",
        "vae/config.json",
        "vae/diffusion_pytorch_model.fp16.safetensors",
    ];

    private static readonly HashSet<string> NoneSkipped = [];

    private HubTestContext _hub = null!;
    private FakeRepository _repository = null!;

    public async ValueTask InitializeAsync()
    {
        _hub = await HubTestContext.StartAsync();
        _repository = _hub.Server.AddRepository(RepoId);
    }

    public async ValueTask DisposeAsync() => await _hub.DisposeAsync();

    [Fact]
    public void StableDiffusion15_WithoutVariant_TakesThePlainSafetensorsAndConfigsOnly()
    {
        DiffusersFileSelection selection = StableDiffusionFiles.ForDiffusersRepo(RepoId, FakeModels.StableDiffusion15Files, Components, variant: null, NoneSkipped);

        Assert.Equal(PlainSelection, selection.Files);
        Assert.Empty(selection.ComponentsWithoutVariant);
    }

    [Fact]
    public void StableDiffusion15_WithFp16_TakesTheFp16SafetensorsOnly()
    {
        DiffusersFileSelection selection = StableDiffusionFiles.ForDiffusersRepo(RepoId, FakeModels.StableDiffusion15Files, Components, "fp16", NoneSkipped);

        Assert.Equal(Fp16Selection, selection.Files);
        Assert.Empty(selection.ComponentsWithoutVariant);
    }

    [Fact]
    public void Variant_MissingForOneComponent_FallsBackToItsPlainWeights_AndSaysWhich()
    {
        string[] files = [.. FakeModels.StableDiffusion15Files.Where(p => p != "vae/diffusion_pytorch_model.fp16.safetensors")];

        DiffusersFileSelection selection = StableDiffusionFiles.ForDiffusersRepo(RepoId, files, Components, "fp16", NoneSkipped);

        Assert.Equal(Fp16Selection.Select(p => p == "vae/diffusion_pytorch_model.fp16.safetensors" ? "vae/diffusion_pytorch_model.safetensors" : p), selection.Files);
        Assert.Equal(["vae"], selection.ComponentsWithoutVariant);
    }

    [Fact]
    public void Variant_InNoComponent_IsRefusedAsDiffusersRefusesIt()
    {
        string[] files = [.. FakeModels.StableDiffusion15Files.Where(p => !p.Contains(".fp16.", StringComparison.Ordinal))];

        var error = Assert.Throws<ModelLoadException>(() => StableDiffusionFiles.ForDiffusersRepo(RepoId, files, Components, "fp16", NoneSkipped));

        Assert.Contains("no weights of the variant 'fp16'", error.Message, StringComparison.Ordinal);
        Assert.Equal(RepoId, error.Path);
    }

    [Fact]
    public void ShardedVariant_TakesEveryShardAndItsIndex()
    {
        string[] files =
        [
            .. FakeModels.StableDiffusion15Files.Where(p => !p.StartsWith("unet/diffusion_pytorch_model.fp16", StringComparison.Ordinal)),
            "unet/diffusion_pytorch_model.fp16-00001-of-00002.safetensors",
            "unet/diffusion_pytorch_model.fp16-00002-of-00002.safetensors",
            "unet/diffusion_pytorch_model.safetensors.index.fp16.json",
            "unet/diffusion_pytorch_model-00001-of-00002.safetensors",
            "unet/diffusion_pytorch_model-00002-of-00002.safetensors",
            "unet/diffusion_pytorch_model.safetensors.index.json",
        ];

        DiffusersFileSelection fp16 = StableDiffusionFiles.ForDiffusersRepo(RepoId, files, Components, "fp16", NoneSkipped);
        DiffusersFileSelection plain = StableDiffusionFiles.ForDiffusersRepo(RepoId, files, Components, variant: null, NoneSkipped);

        Assert.Equal(
            ["unet/config.json", "unet/diffusion_pytorch_model.fp16-00001-of-00002.safetensors", "unet/diffusion_pytorch_model.fp16-00002-of-00002.safetensors",
             "unet/diffusion_pytorch_model.safetensors.index.fp16.json"],
            fp16.Files.Where(p => p.StartsWith("unet/", StringComparison.Ordinal)));
        Assert.Equal(
            ["unet/config.json", "unet/diffusion_pytorch_model-00001-of-00002.safetensors", "unet/diffusion_pytorch_model-00002-of-00002.safetensors",
             "unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.safetensors.index.json"],
            plain.Files.Where(p => p.StartsWith("unet/", StringComparison.Ordinal)));
    }

    [Fact]
    public void ShardedVariant_InTheOlderNaming_IsTakenWhenTheCurrentNamingIsAbsent()
    {
        string[] files =
        [
            .. FakeModels.StableDiffusion15Files.Where(p => !p.StartsWith("unet/diffusion_pytorch_model.fp16", StringComparison.Ordinal)),
            "unet/diffusion_pytorch_model-00001-of-00002.fp16.safetensors",
            "unet/diffusion_pytorch_model-00002-of-00002.fp16.safetensors",
            "unet/diffusion_pytorch_model.safetensors.fp16.index.json",
        ];

        DiffusersFileSelection selection = StableDiffusionFiles.ForDiffusersRepo(RepoId, files, Components, "fp16", NoneSkipped);

        Assert.Equal(
            ["unet/config.json", "unet/diffusion_pytorch_model-00001-of-00002.fp16.safetensors", "unet/diffusion_pytorch_model-00002-of-00002.fp16.safetensors",
             "unet/diffusion_pytorch_model.safetensors.fp16.index.json"],
            selection.Files.Where(p => p.StartsWith("unet/", StringComparison.Ordinal)));
    }

    [Fact]
    public void ComponentWithPickledWeightsOnly_IsRefusedNamingItAndSafetensors()
    {
        string[] files = [.. FakeModels.StableDiffusion15Files.Where(p => !(p.StartsWith("vae/", StringComparison.Ordinal) && p.EndsWith(".safetensors", StringComparison.Ordinal)))];

        var error = Assert.Throws<ModelLoadException>(() => StableDiffusionFiles.ForDiffusersRepo(RepoId, files, Components, variant: null, NoneSkipped));

        Assert.Contains("'vae'", error.Message, StringComparison.Ordinal);
        Assert.Contains("diffusion_pytorch_model.bin", error.Message, StringComparison.Ordinal);
        Assert.Contains("safetensors", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SkippedComponents_AreNotTaken_EvenWithoutUsableWeights()
    {
        string[] files = [.. FakeModels.StableDiffusion15Files.Where(p => !(p.StartsWith("unet/", StringComparison.Ordinal) && p.EndsWith(".safetensors", StringComparison.Ordinal)))];

        DiffusersFileSelection selection = StableDiffusionFiles.ForDiffusersRepo(RepoId, files, Components, "fp16", new HashSet<string> { "unet", "tokenizer" });

        Assert.Equal(Fp16Selection.Where(p => !p.StartsWith("unet/", StringComparison.Ordinal) && !p.StartsWith("tokenizer/", StringComparison.Ordinal)), selection.Files);
    }

    [Fact]
    public void FoldersNotInTheModelIndex_AreLeftAlone()
    {
        string[] files = [.. FakeModels.StableDiffusion15Files, "image_encoder/config.json", "image_encoder/model.safetensors", "notes/readme.txt"];

        DiffusersFileSelection selection = StableDiffusionFiles.ForDiffusersRepo(RepoId, files, Components, variant: null, NoneSkipped);

        Assert.Equal(PlainSelection, selection.Files);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("fp16")]
    public async Task FromTheHub_DownloadsExactlyTheSelection(string? variant)
    {
        string commit = _repository.AddCommit(FakeModels.StableDiffusion15Repository(), FakeContent.IsLfs, "main");
        var options = new StableDiffusionPipelineOptions { Hub = _hub.Options(), Variant = variant };

        string folder = await ModelLocator.ResolveAsync(RepoId, options, new FakeLogger(), TestContext.Current.CancellationToken);

        string[] expected = variant is null ? PlainSelection : Fp16Selection;
        Assert.Equal(Path.Combine(_hub.Storage(RepoId), "snapshots", commit), folder);
        Assert.Equal(expected, HubTestContext.FilesUnder(folder).Where(p => !Directory.Exists(Path.Combine(folder, p))));
        foreach (string path in expected)
        {
            Assert.Equal(_repository.File(commit, path).Content, File.ReadAllBytes(Path.Combine(folder, path)));
        }

        // Nothing else was even asked for.
        string[] requested = [.. _hub.Server.Requests.Where(r => r.Method == "HEAD").Select(r => r.Path[(r.Path.IndexOf(commit, StringComparison.Ordinal) + commit.Length + 1)..]).Order(StringComparer.Ordinal)];
        Assert.Equal(expected, requested);
    }

    [Fact]
    public async Task FromTheHub_VariantFallback_IsLoggedAsAWarningNamingTheComponents()
    {
        Dictionary<string, byte[]> files = FakeModels.StableDiffusion15Repository();
        files.Remove("safety_checker/model.fp16.safetensors");
        files.Remove("vae/diffusion_pytorch_model.fp16.safetensors");
        string commit = _repository.AddCommit(files, FakeContent.IsLfs, "main");
        var logger = new FakeLogger();

        string folder = await ModelLocator.ResolveAsync(
            RepoId, new StableDiffusionPipelineOptions { Hub = _hub.Options(), Variant = "fp16" }, logger, TestContext.Current.CancellationToken);

        Assert.True(File.Exists(Path.Combine(folder, "vae", "diffusion_pytorch_model.safetensors")));
        Assert.True(File.Exists(Path.Combine(folder, "unet", "diffusion_pytorch_model.fp16.safetensors")));
        FakeLogRecord warning = Assert.Single(logger.Collector.GetSnapshot(), r => r.Level == Microsoft.Extensions.Logging.LogLevel.Warning);
        Assert.Contains("safety_checker, vae", warning.Message, StringComparison.Ordinal);
        Assert.EndsWith(commit, folder, StringComparison.Ordinal);
    }

    [Fact]
    public async Task FromTheHub_SkippedComponents_AreNotDownloaded()
    {
        string commit = _repository.AddCommit(FakeModels.StableDiffusion15Repository(), FakeContent.IsLfs, "main");

        string folder = await ModelLocator.ResolveAsync(
            RepoId, new StableDiffusionPipelineOptions { Hub = _hub.Options() }, new FakeLogger(), TestContext.Current.CancellationToken, new HashSet<string> { "unet" });

        Assert.Equal(PlainSelection.Where(p => !p.StartsWith("unet/", StringComparison.Ordinal)), HubTestContext.FilesUnder(folder).Where(p => !Directory.Exists(Path.Combine(folder, p))));
        Assert.EndsWith(commit, folder, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("../fp16")]
    [InlineData("fp16.safetensors")]
    public void Variant_ThatIsNotAPlainName_IsRefused(string variant)
    {
        var error = Assert.Throws<ArgumentException>(() => new StableDiffusionPipelineOptions { Variant = variant });

        Assert.Contains("fp16", error.Message, StringComparison.Ordinal);
    }
}
