using System.Text;
using StableDiffusion.Core.Tests.Hub.FakeHub;
using StableDiffusion.Hub;
using StableDiffusion.Loading;
using Xunit;

namespace StableDiffusion.Core.Tests.Hub;

[Trait("Area", "Hub")]
public sealed class StableDiffusionFilesTests : IDisposable
{
    private readonly DirectoryInfo _folder = Directory.CreateTempSubdirectory("sd-files");

    [Fact]
    public void ReadComponents_TakesEntriesWithLibraryAndClass_SkipsNullsAndPrivateKeys()
    {
        IReadOnlyList<StableDiffusionFiles.Component> components = StableDiffusionFiles.ReadComponents("org/name", Write("model_index.json", FakeModels.ModelIndex));

        Assert.Equal(
            ["feature_extractor", "safety_checker", "scheduler", "text_encoder", "tokenizer", "unet", "vae_decoder", "vae_encoder"],
            components.Select(c => c.Name).Order(StringComparer.Ordinal));
        Assert.True(components.Single(c => c.Name == "unet").IsOnnx);
        Assert.False(components.Single(c => c.Name == "tokenizer").IsOnnx);
    }

    [Fact]
    public void Select_TakesConfigsTokenizerFilesAndGraphs_NotOtherVariants()
    {
        Dictionary<string, byte[]> repository = FakeModels.StableDiffusionRepository();
        var components = StableDiffusionFiles.ReadComponents("org/name", Write("model_index.json", FakeModels.ModelIndex));

        IReadOnlyList<string> selected = StableDiffusionFiles.ForOnnxRepo("org/name", "main", repository.Keys, components, new HashSet<string>());

        // Everything but the external weights, which come from reading the graphs.
        Assert.Equal(FakeModels.StableDiffusionSelection.Where(p => p != "unet/weights.pb"), selected.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Select_WhenAnOnnxComponentHasNoGraph_ThrowsNotFoundNamingIt()
    {
        var components = StableDiffusionFiles.ReadComponents("org/name", Write("model_index.json", FakeModels.ModelIndex));
        string[] files = [.. FakeModels.StableDiffusionRepository().Keys.Where(p => p != "vae_encoder/model.onnx")];

        var error = Assert.Throws<HubNotFoundException>(() => StableDiffusionFiles.ForOnnxRepo("org/name", "main", files, components, new HashSet<string>()));

        Assert.Equal("vae_encoder/model.onnx", error.FilePath);
        Assert.Equal(HubMissingItem.File, error.Missing);
    }

    [Fact]
    public void ReadComponents_OfAPyTorchPipeline_IsNotAnOnnxExport()
    {
        string index = """{"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}""";

        IReadOnlyList<StableDiffusionFiles.Component> components = StableDiffusionFiles.ReadComponents("org/name", Write("model_index.json", index));

        Assert.Equal(["unet", "vae"], components.Select(c => c.Name));
        Assert.False(StableDiffusionFiles.IsOnnxExport(components));
        Assert.True(StableDiffusionFiles.IsOnnxExport(StableDiffusionFiles.ReadComponents("org/name", Write("model_index.json", FakeModels.ModelIndex))));
    }

    [Fact]
    public void ForOnnxRepo_LeavesOutSkippedComponents()
    {
        var components = StableDiffusionFiles.ReadComponents("org/name", Write("model_index.json", FakeModels.ModelIndex));

        IReadOnlyList<string> selected = StableDiffusionFiles.ForOnnxRepo(
            "org/name", "main", FakeModels.StableDiffusionRepository().Keys, components, new HashSet<string> { "unet", "safety_checker" });

        Assert.Equal(
            FakeModels.StableDiffusionSelection.Where(p => !p.StartsWith("unet/", StringComparison.Ordinal) && !p.StartsWith("safety_checker/", StringComparison.Ordinal)),
            selected.Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("../../evil")]
    [InlineData("a/b")]
    public void ReadComponents_WithComponentNameLeavingTheFolder_IsRefused(string name)
    {
        string index = $$"""{"unet": ["diffusers", "OnnxRuntimeModel"], "{{name}}": ["diffusers", "OnnxRuntimeModel"]}""";

        Assert.Throws<HubIntegrityException>(() => StableDiffusionFiles.ReadComponents("org/name", Write("model_index.json", index)));
    }

    [Fact]
    public void ReadComponents_OfInvalidJson_ThrowsIntegrityNamingTheFile()
    {
        var error = Assert.Throws<HubIntegrityException>(() => StableDiffusionFiles.ReadComponents("org/name", Write("model_index.json", "{ not json")));
        Assert.Equal("model_index.json", error.FilePath);
    }

    [Theory]
    [InlineData("weights.pb", "unet/weights.pb")]
    [InlineData("./model.onnx_data", "unet/model.onnx_data")]
    [InlineData("data/part1.bin", "unet/data/part1.bin")]
    public void ExternalDataPaths_AreRelativeToTheGraphFolder(string location, string expected)
    {
        string graph = Write("model.onnx", OnnxBytes.ModelWithExternalData(location));

        Assert.Equal([expected], StableDiffusionFiles.ExternalDataPaths("org/name", "unet/model.onnx", graph));
    }

    [Theory]
    [InlineData("../text_encoder/model.onnx")]
    [InlineData("/etc/passwd")]
    [InlineData("..\\..\\secret")]
    public void ExternalDataPaths_LeavingTheFolder_AreRefused(string location)
    {
        string graph = Write("model.onnx", OnnxBytes.ModelWithExternalData(location));

        var error = Assert.Throws<HubIntegrityException>(() => StableDiffusionFiles.ExternalDataPaths("org/name", "unet/model.onnx", graph));
        Assert.Contains("unet/model.onnx", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ExternalDataPaths_OfACorruptGraph_ThrowsIntegrity()
    {
        string graph = Write("model.onnx", [0x3A, 0xFF, 0xFF, 0xFF, 0x0F]);

        Assert.Throws<HubIntegrityException>(() => StableDiffusionFiles.ExternalDataPaths("org/name", "unet/model.onnx", graph));
    }

    public void Dispose() => _folder.Delete(recursive: true);

    private string Write(string name, string text) => Write(name, Encoding.UTF8.GetBytes(text));

    private string Write(string name, byte[] bytes)
    {
        string path = Path.Combine(_folder.FullName, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }
}
