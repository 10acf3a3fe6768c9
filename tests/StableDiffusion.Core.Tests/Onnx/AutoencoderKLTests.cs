using System.Numerics.Tensors;
using StableDiffusion.Core.Tests.Onnx.Support;
using StableDiffusion.Models;
using StableDiffusion.Onnx;
using StableDiffusion.Onnx.Builders;
using StableDiffusion.Testing;
using StableDiffusion.Weights;
using Xunit;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace StableDiffusion.Core.Tests.Onnx;

/// <summary>
/// The VAE built from tiny-sd's diffusers folder (config.json, and the safetensors file read in place) against diffusers'
/// ONNX export of the same weights.
/// </summary>
[Trait("Area", "WeightsLoading")]
public sealed class AutoencoderKLTests
{
    private static string Vae => Fixtures.PathOf("tiny-sd/vae");

    [Fact]
    public void Decode_MatchesTheOnnxExportOfTheSameWeights()
    {
        Fixtures.Require();
        using SafetensorsFile weights = SafetensorsFile.Open(Path.Combine(Vae, "diffusion_pytorch_model.safetensors"));
        (GraphBuilder graph, SafetensorsParameters parameters, AutoencoderKL config) = Build(weights);
        Value latents = graph.Input("latent_sample", TensorElementType.Float, "batch", config.LatentChannels, "height", "width");
        graph.Output(config.Decode(graph, latents), "sample", "batch", config.OutChannels, "image_height", "image_width");
        float[] input = [.. GraphRunner.Random(2 * 4 * 8 * 8, seed: 7).Select(v => v * 3)];

        (float[] built, long[] shape) = GraphRunner.Run(graph.ToBytes(), parameters.Folder, ("latent_sample", input, [2, 4, 8, 8]));
        (float[] exported, _) = GraphRunner.Run(File.ReadAllBytes(Fixtures.PathOf("tiny-sd-onnx/vae_decoder/model.onnx")), null, ("latent_sample", input, [2, 4, 8, 8]));

        Assert.Equal([2, 3, 64, 64], shape);
        ArrayAssert.Close(exported, built, 1e-5, "decoded images");
    }

    [Fact]
    public void Encode_GivesTheLatentDistributionOfTheOnnxExport()
    {
        Fixtures.Require();
        using SafetensorsFile weights = SafetensorsFile.Open(Path.Combine(Vae, "diffusion_pytorch_model.safetensors"));
        (GraphBuilder graph, SafetensorsParameters parameters, AutoencoderKL config) = Build(weights);
        Value images = graph.Input("sample", TensorElementType.Float, "batch", config.InChannels, "height", "width");
        (Value mean, Value std) = config.Encode(graph, images);
        graph.Output(mean, "mean", "batch", config.LatentChannels, "latent_height", "latent_width");
        graph.Output(std, "std", "batch", config.LatentChannels, "latent_height", "latent_width");
        float[] image = GraphRunner.Random(3 * 64 * 64, seed: 8);
        using var session = GraphRunner.Session(graph.ToBytes(), parameters.Folder);
        using var input = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(image, [1, 3, 64, 64]);
        using var outputs = session.Run(new Microsoft.ML.OnnxRuntime.RunOptions(), ["sample"], [input], ["mean", "std"]);
        using VaeEncoderModel export = VaeEncoderModel.Load(Fixtures.PathOf("tiny-sd-onnx/vae_encoder/model.onnx"));

        LatentDistribution expected = export.Encode(Tensor.Create(image, [1, 3, 64, 64]));

        Assert.Equal([1L, 4, 8, 8], outputs[0].GetTensorTypeAndShape().Shape);
        ArrayAssert.Close(expected.Mean.AsSpan(), outputs[0].GetTensorDataAsSpan<float>(), 1e-5, "mean");
        ArrayAssert.Close(expected.Std!.AsSpan(), outputs[1].GetTensorDataAsSpan<float>(), 1e-5, "std");
    }

    [Fact]
    public void FromConfig_WithABlockTypeItCannotBuild_ThrowsNamingTheField()
    {
        Fixtures.Require();
        string folder = Directory.CreateTempSubdirectory("sd-vae-config-").FullName;
        try
        {
            string path = Path.Combine(folder, "config.json");
            File.WriteAllText(path, File.ReadAllText(Path.Combine(Vae, "config.json")).Replace("\"UpDecoderBlock2D\",\n    \"UpDecoderBlock2D\"", "\"UpDecoderBlock2D\",\n    \"AttnUpDecoderBlock2D\"", StringComparison.Ordinal));

            var ex = Assert.Throws<ModelLoadException>(() => AutoencoderKL.FromConfig(ComponentConfig.Load(path)));

            Assert.StartsWith($"The configuration '{path}' has \"up_block_types\": [", ex.Message, StringComparison.Ordinal);
            Assert.EndsWith("which this SDK cannot build; it supports a list of \"UpDecoderBlock2D\".", ex.Message, StringComparison.Ordinal);
            Assert.Equal(path, ex.Path);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static (GraphBuilder Graph, SafetensorsParameters Parameters, AutoencoderKL Config) Build(SafetensorsFile weights)
    {
        var parameters = new SafetensorsParameters([weights]);
        return (new GraphBuilder(parameters: parameters), parameters, AutoencoderKL.FromConfig(ComponentConfig.Load(Path.Combine(Vae, "config.json"))));
    }
}
