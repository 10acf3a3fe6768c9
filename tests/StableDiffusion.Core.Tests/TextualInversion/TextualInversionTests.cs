using StableDiffusion.Core.Tests.Weights;
using StableDiffusion.Models;
using StableDiffusion.Pipelines;
using StableDiffusion.Testing;
using StableDiffusion.TextualInversion;
using Xunit;

namespace StableDiffusion.Core.Tests.TextualInversion;

/// <summary>
/// Embedding files in every format (the repository's test embeddings, tests/reference/weights/embeddings), their tokens
/// in prompts, and the specific errors for files that are not embeddings, vectors of another width and tokens taken.
/// </summary>
[Trait("Area", "TextualInversion")]
public sealed class TextualInversionTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("sd-ti-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static string Embedding(string name) => Path.Combine(Fixtures.RepositoryRoot, "tests", "reference", "weights", "embeddings", name);

    [Theory]
    [InlineData("cat-toy.safetensors", null, "<cat-toy>", 1)]
    [InlineData("my-style.safetensors", null, "<my-style>", 3)]
    [InlineData("webui-style.safetensors", null, "webui-style", 2)]
    [InlineData("webui-style.safetensors", "<webui>", "<webui>", 2)]
    [InlineData("learned_embeds.bin", null, "<bin-token>", 1)]
    [InlineData("webui-pt.pt", "<webui-pt>", "<webui-pt>", 2)]
    public void Read_TakesEachFormatsTokenAndVectors(string file, string? token, string expectedToken, int expectedVectors)
    {
        TextualInversionEmbedding embedding = TextualInversionFile.Read(Embedding(file), token);

        Assert.Equal(expectedToken, embedding.Token);
        Assert.Equal(32, embedding.Width);
        Assert.Equal(expectedVectors, embedding.Count);
        Assert.Equal([expectedToken, .. Enumerable.Range(1, expectedVectors - 1).Select(i => $"{expectedToken}_{i}")], embedding.Tokens);
        Assert.All(embedding.Vectors, v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void Read_AFileOfSeveralOtherTensors_ThrowsSayingItIsNoEmbedding()
    {
        string path = Path.Combine(_folder, "lora.safetensors");
        SafetensorsWriter.Write(path, [SafetensorsWriter.Tensor.Float32("lora_unet_down.lora_up.weight", [2, 2], [1, 2, 3, 4]), SafetensorsWriter.Tensor.Float32("lora_unet_down.alpha", [1], [1])]);

        var ex = Assert.Throws<TextualInversionException>(() => TextualInversionFile.Read(path, null));

        Assert.Contains("is not a textual inversion embedding: it has 2 tensors (lora_unet_down.lora_up.weight, lora_unet_down.alpha)", ex.Message, StringComparison.Ordinal);
        Assert.Equal(path, ex.Path);
    }

    [Fact]
    public void Read_AFileWithoutTensors_ThrowsSayingItIsNoEmbedding()
    {
        string path = Path.Combine(_folder, "empty.safetensors");
        SafetensorsWriter.Write(path, []);

        var ex = Assert.Throws<TextualInversionException>(() => TextualInversionFile.Read(path, "<x>"));

        Assert.Contains("it has no tensors", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_ATensorOfThreeDimensions_Throws()
    {
        string path = Path.Combine(_folder, "cube.safetensors");
        SafetensorsWriter.Write(path, [SafetensorsWriter.Tensor.Float32("<cube>", [1, 2, 2], [1, 2, 3, 4])]);

        var ex = Assert.Throws<TextualInversionException>(() => TextualInversionFile.Read(path, null));

        Assert.Contains("has shape [1, 2, 2]", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_AMissingFile_Throws()
    {
        var ex = Assert.Throws<ModelLoadException>(() => TextualInversionFile.Read(Path.Combine(_folder, "none.safetensors"), null));

        Assert.Contains("does not exist", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Load_VectorsOfAnotherWidth_ThrowsNamingBothWidths()
    {
        using StableDiffusionPipeline pipe = await LoadAsync();
        string path = Path.Combine(_folder, "wide.safetensors");
        SafetensorsWriter.Write(path, [SafetensorsWriter.Tensor.Float32("<wide>", [768], new float[768])]);

        var ex = Assert.Throws<TextualInversionException>(() => pipe.LoadTextualInversion(path));

        Assert.Contains("has vectors of width 768, but this model's text encoder takes 32", ex.Message, StringComparison.Ordinal);
        Assert.Empty(pipe.TextualInversionTokens);
    }

    [Theory]
    [InlineData("cat")]
    [InlineData("<|endoftext|>")]
    public async Task Load_ATokenOfTheVocabulary_Throws(string token)
    {
        using StableDiffusionPipeline pipe = await LoadAsync();

        var ex = Assert.Throws<TextualInversionException>(() => pipe.LoadTextualInversion(Embedding("cat-toy.safetensors"), token));

        Assert.Contains($"The token '{token}' of", ex.Message, StringComparison.Ordinal);
        Assert.Contains("is already in the tokenizer's vocabulary", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Load_TheSameTokenTwice_ThrowsAndKeepsTheFirst()
    {
        using StableDiffusionPipeline pipe = await LoadAsync();
        pipe.LoadTextualInversion(Embedding("cat-toy.safetensors"));

        var ex = Assert.Throws<TextualInversionException>(() => pipe.LoadTextualInversion(Embedding("cat-toy.safetensors")));

        Assert.Contains("(a textual inversion loaded before)", ex.Message, StringComparison.Ordinal);
        Assert.Equal(["<cat-toy>"], pipe.TextualInversionTokens);
    }

    [Fact]
    public async Task Load_ATokenWhoseSecondVectorsNameIsTaken_Throws()
    {
        using StableDiffusionPipeline pipe = await LoadAsync();
        pipe.LoadTextualInversion(Embedding("cat-toy.safetensors"), "<s>_1");

        var ex = Assert.Throws<TextualInversionException>(() => pipe.LoadTextualInversion(Embedding("my-style.safetensors"), "<s>"));

        Assert.Contains("The token '<s>_1'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ATokenOfSeveralVectors_StandsForAllOfThem_AndUnloadingRestoresThePlainPrompt()
    {
        using StableDiffusionPipeline pipe = await LoadAsync();
        float[] before = Embeds(pipe, "a castle in <my-style>");

        pipe.LoadTextualInversion(Embedding("my-style.safetensors"));
        int[] ids = pipe.Tokenizer.Encode("a castle in <my-style>, <MY-STYLE>").UntruncatedIds.ToArray();
        float[] with = Embeds(pipe, "a castle in <my-style>");
        pipe.UnloadTextualInversion();
        float[] after = Embeds(pipe, "a castle in <my-style>");

        int first = pipe.Tokenizer.VocabularySize;
        Assert.Equal([49406, 320, 3540, 530, first, first + 1, first + 2, 267, first, first + 1, first + 2, 49407], ids);
        Assert.NotEqual(before, with);
        Assert.Equal(before, after);
        Assert.Empty(pipe.TextualInversionTokens);
    }

    [Fact]
    public async Task AnAddedVector_IsUsedExactlyAsATokenWithTheSameEmbedding()
    {
        // The vector of 'cube' under a new token: the prompt embeddings are those of 'cube'.
        using StableDiffusionPipeline pipe = await LoadAsync();
        using var weights = StableDiffusion.Weights.SafetensorsFile.Open(Path.Combine(Fixtures.PathOf("tiny-sd"), "text_encoder", "model.safetensors"));
        var table = weights.Find("text_model.embeddings.token_embedding.weight")!;
        float[] cube = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(weights.GetBytes(table)).Slice(11353 * 32, 32).ToArray();
        string path = Path.Combine(_folder, "cube.safetensors");
        SafetensorsWriter.Write(path, [SafetensorsWriter.Tensor.Float32("<cube>", [32], cube)]);

        pipe.LoadTextualInversion(path);

        Assert.Equal(Embeds(pipe, "a red cube"), Embeds(pipe, "a red <cube>"));
    }

    private static Task<StableDiffusionPipeline> LoadAsync()
    {
        Fixtures.Require();
        return StableDiffusionPipeline.FromPretrainedAsync(Fixtures.TinyModel, cancellationToken: TestContext.Current.CancellationToken);
    }

    private static float[] Embeds(StableDiffusionPipeline pipe, string prompt)
    {
        using GenerationResult result = pipe.Generate(new TextToImageRequest(prompt) { NumInferenceSteps = 1, Height = 32, Width = 32, Seed = 1, GuidanceScale = 1f });
        return result.PromptEmbeds.AsSpan().ToArray();
    }
}
