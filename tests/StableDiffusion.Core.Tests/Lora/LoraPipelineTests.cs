using StableDiffusion.Lora;
using StableDiffusion.Pipelines;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.Lora;

/// <summary>The LoRA API on a pipeline: what each call does to the images, exactly where it must restore the base model.</summary>
[Trait("Area", "Lora")]
public sealed class LoraPipelineTests
{
    private static string StyleLora => LoraFiles.Path("style.peft.safetensors");

    [Fact]
    public async Task Scale0_AndUnload_GiveTheBaseImagesExactly()
    {
        using StableDiffusionPipeline pipe = await LoadAsync();
        float[] baseline = await GenerateAsync(pipe, Request());

        pipe.LoadLoraWeights(StyleLora, "style");
        float[] styled = await GenerateAsync(pipe, Request());
        float[] scale0 = await GenerateAsync(pipe, Request() with { LoraScale = 0f });
        pipe.UnloadLoraWeights();
        float[] unloaded = await GenerateAsync(pipe, Request());

        Assert.True(MaxDifference(baseline, styled) > 1e-2, "The LoRA should change the image.");
        Assert.Equal(baseline, scale0);
        Assert.Equal(baseline, unloaded);
        Assert.Empty(pipe.GetListAdapters());
    }

    [Fact]
    public async Task SetAdapters_ChoosesAdaptersAndWeights_AndEmptyTurnsThemOff()
    {
        using StableDiffusionPipeline pipe = await LoadAsync();
        float[] baseline = await GenerateAsync(pipe, Request());
        Assert.Equal("default_0", pipe.LoadLoraWeights(StyleLora));
        Assert.Equal("detail", pipe.LoadLoraWeights(LoraFiles.Path("detail.kohya.safetensors"), "detail"));
        Assert.Equal(["default_0", "detail"], pipe.GetActiveAdapters());

        pipe.SetAdapters(["default_0"], [0.5f]);
        float[] half = await GenerateAsync(pipe, Request());
        float[] scaledCall = await GenerateAsync(pipe, Request() with { LoraScale = 2f }); // weight 0.5 times scale 2
        pipe.SetAdapters(["default_0"]);
        float[] full = await GenerateAsync(pipe, Request());
        pipe.SetAdapters([]);
        float[] none = await GenerateAsync(pipe, Request());

        Assert.Equal(["default_0", "detail"], pipe.GetListAdapters());
        Assert.True(MaxDifference(half, full) > 1e-3);
        Assert.True(MaxDifference(scaledCall, full) < 1e-5, $"weight 0.5 at scale 2 should be weight 1: {MaxDifference(scaledCall, full)}");
        Assert.Equal(baseline, none);
    }

    [Fact]
    public async Task FuseThenUnload_KeepsTheFusedLora_AsDiffusersDoes()
    {
        using StableDiffusionPipeline pipe = await LoadAsync();
        pipe.LoadLoraWeights(StyleLora, "style");
        float[] styled = await GenerateAsync(pipe, Request());

        pipe.FuseLora();
        pipe.UnloadLoraWeights();
        float[] kept = await GenerateAsync(pipe, Request());

        Assert.True(MaxDifference(styled, kept) < 1e-5);
        Assert.Throws<InvalidOperationException>(() => pipe.FuseLora());
    }

    [Fact]
    public async Task ApiErrors_NameTheProblem()
    {
        using StableDiffusionPipeline pipe = await LoadAsync();
        pipe.LoadLoraWeights(StyleLora, "style");

        Assert.Contains("already", Assert.Throws<ArgumentException>(() => pipe.LoadLoraWeights(StyleLora, "style")).Message, StringComparison.Ordinal);
        Assert.Contains("'nope'", Assert.Throws<ArgumentException>(() => pipe.SetAdapters(["nope"])).Message, StringComparison.Ordinal);
        Assert.Contains("2 adapter weights", Assert.Throws<ArgumentException>(() => pipe.SetAdapters(["style"], [1f, 2f])).Message, StringComparison.Ordinal);
        Assert.Contains("twice", Assert.Throws<ArgumentException>(() => pipe.SetAdapters(["style", "style"])).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => pipe.FuseLora(float.NaN));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => pipe.GenerateAsync(Request() with { LoraScale = float.PositiveInfinity }, TestContext.Current.CancellationToken));
        pipe.FuseLora();
        Assert.Contains("fused already", Assert.Throws<InvalidOperationException>(() => pipe.FuseLora()).Message, StringComparison.Ordinal);
        pipe.SetAdapters([]);
        pipe.UnfuseLora();
        Assert.Contains("no active", Assert.Throws<InvalidOperationException>(() => pipe.FuseLora()).Message, StringComparison.Ordinal);
        Assert.Throws<LoraLoadException>(() => pipe.LoadLoraWeights(Path.Combine(Path.GetTempPath(), "missing-lora.safetensors")));
    }

    private static Task<StableDiffusionPipeline> LoadAsync()
    {
        Fixtures.Require();
        return StableDiffusionPipeline.FromPretrainedAsync(Fixtures.PathOf("tiny-sd-onnx"),
            new StableDiffusionPipelineOptions { EnableSafetyChecker = false }, TestContext.Current.CancellationToken);
    }

    private static TextToImageRequest Request() =>
        new("a photo of an astronaut riding a horse on mars") { Seed = 5, NumInferenceSteps = 3, Height = 32, Width = 32 };

    private static async Task<float[]> GenerateAsync(StableDiffusionPipeline pipe, TextToImageRequest request)
    {
        using GenerationResult result = await pipe.GenerateAsync(request, TestContext.Current.CancellationToken);
        return result.ImageTensor.AsSpan().ToArray();
    }

    private static float MaxDifference(float[] a, float[] b) => a.Zip(b).Max(p => Math.Abs(p.First - p.Second));
}
