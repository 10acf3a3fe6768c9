using System.Numerics.Tensors;
using StableDiffusion.Core.Tests.Onnx.Support;
using StableDiffusion.ExecutionProviders;
using StableDiffusion.Loading;
using StableDiffusion.Models;
using StableDiffusion.Onnx;
using StableDiffusion.Onnx.Builders;
using StableDiffusion.Safety;
using StableDiffusion.Testing;
using StableDiffusion.Weights;
using Xunit;

namespace StableDiffusion.Core.Tests.Loading;

/// <summary>
/// Each component as the loader builds it from tiny-sd's diffusers folder, through the model types the pipelines call,
/// against the same component loaded from diffusers' ONNX export of the same weights (tiny-sd-onnx), on the CPU.
/// </summary>
[Trait("Area", "WeightsLoading")]
public sealed class BuiltComponentParityTests
{
    [Fact]
    public void TextEncoder_GivesTheExportsEmbeddings()
    {
        Fixtures.Require();
        using TextEncoderModel built = TextEncoderModel.FromPretrained(Fixtures.PathOf("tiny-sd/text_encoder"));
        using TextEncoderModel export = TextEncoderModel.Load(Fixtures.PathOf("tiny-sd-onnx/text_encoder/model.onnx"));
        var random = new Random(5);
        int[] ids = [.. Enumerable.Range(0, 2 * 77).Select(i => i % 77 == 0 ? 49406 : i % 77 > 10 ? 49407 : random.Next(1, 49406))];

        Assert.Equal(export.HiddenSize, built.HiddenSize);
        ArrayAssert.Close(export.Encode(ids, 2).AsSpan(), built.Encode(ids, 2).AsSpan(), 1e-5, "text embeddings");
    }

    [Fact]
    public void UNet_OneCall_GivesTheExportsPrediction()
    {
        Fixtures.Require();
        using UNetModel built = UNetModel.FromPretrained(Fixtures.PathOf("tiny-sd/unet"));
        using UNetModel export = UNetModel.Load(Fixtures.PathOf("tiny-sd-onnx/unet/model.onnx"));
        float[] sample = GraphRunner.Random(2 * 4 * 8 * 8, seed: 11);
        float[] context = GraphRunner.Random(2 * 77 * 32, seed: 12);

        // The built graph fixes the channels its configuration gives (the export leaves the input's open).
        Assert.Equal((4, 4, 32), (built.InChannels, built.OutChannels, built.CrossAttentionDim));
        ArrayAssert.Close(Predict(export, sample, context), Predict(built, sample, context), 1e-5, "noise prediction");
    }

    [Fact]
    public void VaeDecoder_GivesTheExportsImages()
    {
        Fixtures.Require();
        using VaeDecoderModel built = VaeDecoderModel.FromPretrained(Fixtures.PathOf("tiny-sd/vae"));
        using VaeDecoderModel export = VaeDecoderModel.Load(Fixtures.PathOf("tiny-sd-onnx/vae_decoder/model.onnx"));
        Tensor<float> latents = Tensor.Create(GraphRunner.Random(2 * 4 * 8 * 8, seed: 13), [2, 4, 8, 8]);

        Assert.Equal(4, built.LatentChannels);
        ArrayAssert.Close(export.Decode(latents).AsSpan(), built.Decode(latents).AsSpan(), 1e-5, "decoded images");
    }

    [Fact]
    public void VaeEncoder_GivesTheExportsLatentDistribution()
    {
        Fixtures.Require();
        using var built = (VaeEncoderModel)ComponentRegistry.LoadFolder(ModelComponents.VaeEncoder, Fixtures.PathOf("tiny-sd/vae"), null);
        using VaeEncoderModel export = VaeEncoderModel.Load(Fixtures.PathOf("tiny-sd-onnx/vae_encoder/model.onnx"));
        Tensor<float> image = Tensor.Create(GraphRunner.Random(3 * 64 * 64, seed: 14), [1, 3, 64, 64]);

        LatentDistribution expected = export.Encode(image), actual = built.Encode(image);

        Assert.Equal(VaeEncoderOutputKind.LatentDistribution, built.OutputKind);
        ArrayAssert.Close(expected.Mean.AsSpan(), actual.Mean.AsSpan(), 1e-5, "mean");
        ArrayAssert.Close(expected.Std!.AsSpan(), actual.Std!.AsSpan(), 1e-5, "std");
    }

    [Fact]
    public void SafetyChecker_GivesTheExportsFlagsAndImages()
    {
        Fixtures.Require();
        string preprocessor = Fixtures.PathOf("tiny-sd/feature_extractor/preprocessor_config.json");
        ClipImageProcessor processor = ClipImageProcessor.Load(preprocessor);
        using SafetyChecker export = SafetyChecker.Load(Fixtures.PathOf("tiny-sd-onnx/safety_checker/model.onnx"), preprocessor);
        using SafetyChecker built = BuildSafetyChecker(processor);
        // Images of every brightness: the tiny checker's random concepts flag some of them.
        float[] pixels = [.. Enumerable.Range(0, 6).SelectMany(i => GraphRunner.Random(64 * 64 * 3, seed: 20 + i).Select(v => Math.Clamp((i / 5f) + (0.1f * v), 0f, 1f)))];
        Tensor<float> images = Tensor.Create(pixels, [6, 64, 64, 3]);

        SafetyCheckerResult expected = export.Check(images, TestContext.Current.CancellationToken), actual = built.Check(images, TestContext.Current.CancellationToken);

        Assert.Equal(expected.HasNsfwConcepts, actual.HasNsfwConcepts);
        ArrayAssert.Close(expected.Images.AsSpan(), actual.Images.AsSpan(), 0, "checked images");
    }

    private static SafetyChecker BuildSafetyChecker(ClipImageProcessor processor)
    {
        using SafetensorsFile weights = SafetensorsFile.Open(Fixtures.PathOf("tiny-sd/safety_checker/model.safetensors"));
        return (SafetyChecker)BuiltComponents.Build(ModelComponents.SafetyChecker, ComponentConfig.Load(Fixtures.PathOf("tiny-sd/safety_checker/config.json")),
            new SafetensorsParameters([weights]), new ComponentBuildSettings(new SessionSettings(), FeatureExtractor: processor));
    }

    private static float[] Predict(UNetModel unet, float[] sample, float[] context)
    {
        var prediction = new float[sample.Length];
        unet.Predict(new ReadOnlyTensorSpan<float>(sample, [2, 4, 8, 8]), 480.5f, new ReadOnlyTensorSpan<float>(context, [2, 77, 32]), new TensorSpan<float>(prediction, [2, 4, 8, 8]));
        return prediction;
    }
}
