using System.Numerics.Tensors;
using StableDiffusion.Models;
using StableDiffusion.Pipelines;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.Lora;

/// <summary>
/// A LoRA on every kind of model the SDK loads: the diffusers folder (graphs built from its safetensors) and the single
/// file (graphs built from the original-layout checkpoint) hold the ONNX export's weights, so the same adapters must give
/// the export's images and prompt embeddings, which <see cref="LoraParityTests"/> holds to diffusers'.
/// </summary>
[Trait("Area", "Lora")]
[Trait("Area", "WeightsLoading")]
public sealed class LoraModelSourceTests
{
    private const double SingleFileRelativeTolerance = 0.02;

    public static TheoryData<string> Files => ["style.peft.safetensors", "style.kohya.safetensors", "locon.kohya.safetensors"];

    [Theory]
    [MemberData(nameof(Files))]
    public async Task ALoraOnTheDiffusersFolder_GivesTheExportsImage(string lora)
    {
        Outputs export = await GenerateAsync(LoadExportAsync, lora);
        Outputs folder = await GenerateAsync(() => LoadAsync(Fixtures.PathOf("tiny-sd"), new StableDiffusionPipelineOptions()), lora);

        ArrayAssert.Close(export.LoraEmbeds, folder.LoraEmbeds, 1e-5, $"{lora} on the diffusers folder: prompt embeds");
        ArrayAssert.Close(export.LoraImage, folder.LoraImage, 1e-4, $"{lora} on the diffusers folder: image");
    }

    [Theory]
    [MemberData(nameof(Files))]
    public async Task ALoraOnTheSingleFile_ChangesItsImageAsTheExports(string lora)
    {
        Outputs export = await GenerateAsync(LoadExportAsync, lora);
        Outputs file = await GenerateAsync(
            () => StableDiffusionPipeline.FromSingleFileAsync(Fixtures.PathOf("tiny-sd-single-file.fp16.safetensors"),
                new StableDiffusionPipelineOptions { BaseModel = Fixtures.PathOf("tiny-sd"), EnableSafetyChecker = false }, TestContext.Current.CancellationToken),
            lora);

        // The file holds the export's weights rounded to float16 (its images differ from the export's by about 5.5e-4,
        // fixtures README), and the merged weights are rounded to float16 again: what the LoRA changes must be the same
        // to within that rounding, a small fraction of the change itself (a layer missed or merged wrongly is not).
        AssertSameChange(Change(export.BaseEmbeds, export.LoraEmbeds), Change(file.BaseEmbeds, file.LoraEmbeds), $"{lora} on the single file: change of the prompt embeds");
        AssertSameChange(Change(export.BaseImage, export.LoraImage), Change(file.BaseImage, file.LoraImage), $"{lora} on the single file: change of the image");
    }

    [Fact]
    public async Task ALoraOnAGivenUNet_IsAppliedToItsOwnGraph_AndLeavesTheCallersModelLoaded()
    {
        Outputs export = await GenerateAsync(LoadExportAsync, "style.peft.safetensors");
        using UNetModel unet = UNetModel.FromPretrained(Fixtures.PathOf("tiny-sd/unet"));
        var options = new StableDiffusionPipelineOptions { Components = new Dictionary<string, OnnxModel> { [ModelComponents.UNet] = unet } };

        Outputs given = await GenerateAsync(() => LoadAsync(Fixtures.TinyModel, options), "style.peft.safetensors");

        ArrayAssert.Close(export.LoraImage, given.LoraImage, 1e-4, "style on a given UNet built from diffusers weights");
        // The pipeline put its merged copy in place of the caller's UNet and released the copy; the caller's still runs.
        Tensor<float> prediction = Tensor.CreateFromShape<float>([1, 4, 4, 4]);
        unet.Predict(Tensor.CreateFromShape<float>([1, 4, 4, 4]), 1f, Tensor.CreateFromShape<float>([1, 77, 32]), prediction);
    }

    private static Task<StableDiffusionPipeline> LoadExportAsync() => LoadAsync(Fixtures.TinyModel, new StableDiffusionPipelineOptions());

    private static Task<StableDiffusionPipeline> LoadAsync(string model, StableDiffusionPipelineOptions options)
    {
        Fixtures.Require();
        return StableDiffusionPipeline.FromPretrainedAsync(model, options with { EnableSafetyChecker = false }, TestContext.Current.CancellationToken);
    }

    // One generation without the LoRA and one with it at weight 0.8 and a per-call scale, with guidance, so that the UNet
    // and the text encoder both change and the negative prompt goes through the merged text encoder too. A LoRA that
    // changed nothing would prove nothing: checked.
    private static async Task<Outputs> GenerateAsync(Func<Task<StableDiffusionPipeline>> load, string lora)
    {
        using StableDiffusionPipeline pipe = await load();
        var request = new TextToImageRequest("a photo of an astronaut riding a horse on mars")
        {
            NegativePrompt = "blurry",
            Seed = 7,
            NumInferenceSteps = 3,
            Height = 32,
            Width = 32,
            LoraScale = 0.9f,
        };
        (float[] baseImage, float[] baseEmbeds) = await GenerateAsync(pipe, request);
        pipe.LoadLoraWeights(LoraFiles.Path(lora), "under-test");
        pipe.SetAdapters(["under-test"], [0.8f]);
        (float[] image, float[] embeds) = await GenerateAsync(pipe, request);
        Assert.True(Change(baseImage, image).Max(Math.Abs) > 1e-2, $"{lora} should change the image.");
        return new Outputs(baseImage, baseEmbeds, image, embeds);
    }

    private static async Task<(float[] Image, float[] Embeds)> GenerateAsync(StableDiffusionPipeline pipe, TextToImageRequest request)
    {
        using GenerationResult result = await pipe.GenerateAsync(request, TestContext.Current.CancellationToken);
        return (result.ImageTensor.AsSpan().ToArray(), result.PromptEmbeds.AsSpan().ToArray());
    }

    private static void AssertSameChange(float[] expected, float[] actual, string what)
    {
        double largest = expected.Max(Math.Abs);
        TestContext.Current.TestOutputHelper?.WriteLine($"{what}: largest change {largest:G3}");
        ArrayAssert.Close(expected, actual, SingleFileRelativeTolerance * largest, what);
    }

    private static float[] Change(float[] before, float[] after) => [.. after.Zip(before, (a, b) => a - b)];

    private sealed record Outputs(float[] BaseImage, float[] BaseEmbeds, float[] LoraImage, float[] LoraEmbeds);
}
