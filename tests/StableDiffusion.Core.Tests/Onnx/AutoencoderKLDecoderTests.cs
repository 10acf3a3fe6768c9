using StableDiffusion.Core.Tests.Onnx.Support;
using StableDiffusion.Onnx;
using StableDiffusion.Onnx.Builders;
using StableDiffusion.Testing;
using StableDiffusion.Weights;
using Xunit;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace StableDiffusion.Core.Tests.Onnx;

/// <summary>The VAE decoder built from tiny-sd's diffusers folder against diffusers' ONNX export of the same weights.</summary>
[Trait("Area", "WeightsLoading")]
public sealed class AutoencoderKLDecoderTests
{
    [Fact]
    public void Decode_MatchesTheOnnxExportOfTheSameWeights()
    {
        Fixtures.Require();
        string vae = Fixtures.PathOf("tiny-sd/vae");
        using SafetensorsFile weights = SafetensorsFile.Open(Path.Combine(vae, "diffusion_pytorch_model.safetensors"));
        var parameters = new SafetensorsParameters([weights]);
        var graph = new GraphBuilder(parameters: parameters);
        AutoencoderKL config = AutoencoderKL.FromConfig(ComponentConfig.Load(Path.Combine(vae, "config.json")));
        Value latents = graph.Input("latent_sample", TensorElementType.Float, "batch", config.LatentChannels, "height", "width");
        graph.Output(config.Decode(graph, latents), "sample", "batch", config.OutChannels, "image_height", "image_width");
        float[] input = GraphRunner.Random(2 * 4 * 8 * 8, seed: 7).Select(v => v * 3).ToArray();

        (float[] built, long[] shape) = GraphRunner.Run(graph.ToBytes(), parameters.Folder, ("latent_sample", input, [2, 4, 8, 8]));
        (float[] exported, _) = GraphRunner.Run(File.ReadAllBytes(Fixtures.PathOf("tiny-sd-onnx/vae_decoder/model.onnx")), null, ("latent_sample", input, [2, 4, 8, 8]));

        Assert.Equal([2, 3, 64, 64], shape);
        ArrayAssert.Close(exported, built, 1e-5, "decoded images");
    }
}
