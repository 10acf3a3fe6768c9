using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using StableDiffusion.Core.Tests.Onnx.Support;
using StableDiffusion.Onnx;
using StableDiffusion.Onnx.Builders;
using StableDiffusion.Testing;
using StableDiffusion.Weights;
using Xunit;

namespace StableDiffusion.Core.Tests.Gpu;

/// <summary>
/// The CUDA-fused float16 graphs built from diffusers weights (ONNX Runtime's NhwcConv, GroupNorm, MultiHeadAttention,
/// BiasSplitGelu, and the residual sums in SkipGroupNorm, SkipLayerNormalization and BiasAdd, with convolution biases moved
/// into them) against the plain float32 graphs of the same weights, within float16's precision. They need ONNX Runtime's
/// CUDA package (build with -p:UseCuda=true) and a GPU; the tiny fixtures always run, and SD_CUDA_DIFFUSERS_UNET may name a
/// full-size diffusers UNet folder (for instance one written by benchmarks/StableDiffusion.UNetBenchmark make-sd15), whose
/// widths take the fused kernels the tiny model falls back from (BiasSplitGelu, BiasAdd).
/// </summary>
[Trait("Category", "Gpu")]
public sealed class FusedGraphTests
{
    private const string FullSizeVariable = "SD_CUDA_DIFFUSERS_UNET";

    /// <summary>float16 through a whole UNet: relative to the output's scale.</summary>
    private const double Float16Tolerance = 1e-2;

    [Fact]
    public void FusedUNet_MatchesThePlainFloat32Graph()
    {
        RequireCuda();
        CompareUNet(Fixtures.PathOf("tiny-sd/unet"), batch: 2, latent: 8);
        if (Environment.GetEnvironmentVariable(FullSizeVariable) is { Length: > 0 } full)
        {
            CompareUNet(full, batch: 2, latent: 64);
        }
    }

    [Fact]
    public void FusedVaeDecoder_MatchesThePlainFloat32Decoder()
    {
        RequireCuda();
        string vae = Fixtures.PathOf("tiny-sd/vae");
        using SafetensorsFile weights = SafetensorsFile.Open(Path.Combine(vae, "diffusion_pytorch_model.safetensors"));
        AutoencoderKL config = AutoencoderKL.FromConfig(ComponentConfig.Load(Path.Combine(vae, "config.json")));
        float[] latents = GraphRunner.Random(2 * config.LatentChannels * 8 * 8, seed: 4);
        long[] shape = [2, config.LatentChannels, 8, 8];

        float[] expected = Run(Decoder(weights, config, GraphFlavor.Plain, TensorElementType.Float), cuda: false, [("latent_sample", latents, shape)]);
        float[] actual = Run(Decoder(weights, config, GraphFlavor.CudaFused, TensorElementType.Float16), cuda: true, [("latent_sample", latents, shape)]);

        ArrayAssert.CloseRelative(expected, actual, Float16Tolerance, "fused float16 VAE decoder on CUDA vs plain float32 on the CPU");
    }

    [Fact]
    public void FusedUNet_WithFixedDimensions_RunsEntirelyOnCudaAsACudaGraph()
    {
        // With every dimension fixed by free dimension overrides ONNX Runtime folds the shape arithmetic away; a session
        // with enable_cuda_graph refuses to load when any node is left on the CPU.
        RequireCuda();
        (ModelProto model, string folder) = UNetUnderTest.BuildGraph("tiny-sd/unet", GraphFlavor.CudaFused, TensorElementType.Float16);
        string optimized = Path.Combine(Path.GetTempPath(), $"sd-fused-unet-{Guid.NewGuid():N}.onnx");
        try
        {
            using (Session(model, folder, cuda: true, options =>
            {
                foreach ((string name, long size) in new[] { ("batch", 2L), ("height", 8L), ("width", 8L), ("sequence", 77L) })
                {
                    options.AddFreeDimensionOverrideByName(name, size);
                }

                options.OptimizedModelFilePath = optimized;
            }, cudaGraph: true))
            {
            }

            ModelProto folded = ModelProto.Parser.ParseFrom(File.ReadAllBytes(optimized));
            Assert.DoesNotContain(folded.Graph.Node, n => n.OpType == "Shape");
        }
        finally
        {
            File.Delete(optimized);
            File.Delete(optimized + ".data");
        }
    }

    private static void CompareUNet(string folder, int batch, int latent)
    {
        string config = Path.Combine(folder, "config.json");
        using SafetensorsFile weights = SafetensorsFile.Open(Path.Combine(folder, "diffusion_pytorch_model.safetensors"));
        UNet2DConditionModel model = UNet2DConditionModel.FromConfig(ComponentConfig.Load(config));
        (float[] sample, float[] context) = Onnx.UNet2DConditionModelTests.Inputs(model, batch, latent, latent, 77, seed: 11);
        (string, float[], long[])[] inputs =
        [
            ("sample", sample, [batch, model.InChannels, latent, latent]),
            ("timestep", [.. Enumerable.Repeat(601.5f, batch)], [batch]),
            ("encoder_hidden_states", context, [batch, 77, model.CrossAttentionDim[0]]),
        ];

        float[] expected = Run(UNet(weights, model, GraphFlavor.Plain, TensorElementType.Float), cuda: false, inputs);
        float[] actual = Run(UNet(weights, model, GraphFlavor.CudaFused, TensorElementType.Float16), cuda: true, inputs);

        ArrayAssert.CloseRelative(expected, actual, Float16Tolerance, $"fused float16 UNet of {folder} on CUDA vs plain float32 on the CPU");
    }

    private static (ModelProto, string) UNet(SafetensorsFile weights, UNet2DConditionModel model, GraphFlavor flavor, TensorElementType type)
    {
        var parameters = new SafetensorsParameters([weights], type);
        var graph = new GraphBuilder(parameters: parameters, flavor: flavor);
        model.BuildGraph(graph, type);
        return (graph.ToModel(), parameters.Folder);
    }

    private static (ModelProto, string) Decoder(SafetensorsFile weights, AutoencoderKL config, GraphFlavor flavor, TensorElementType type)
    {
        var parameters = new SafetensorsParameters([weights], type);
        var graph = new GraphBuilder(parameters: parameters, flavor: flavor);
        Value latents = graph.Input("latent_sample", type, "batch", config.LatentChannels, "height", "width");
        graph.Output(config.Decode(graph, latents), "sample", "batch", config.OutChannels, "image_height", "image_width");
        return (graph.ToModel(), parameters.Folder);
    }

    // Runs on float32 data, converting inputs and the output where the graph takes float16.
    private static float[] Run((ModelProto Model, string Folder) graph, bool cuda, (string Name, float[] Values, long[] Shape)[] inputs)
    {
        using InferenceSession session = Session(graph.Model, graph.Folder, cuda);
        var values = inputs.Select(i => session.InputMetadata[i.Name].ElementDataType == TensorElementType.Float16
            ? OrtValue.CreateTensorValueFromMemory(i.Values.Select(v => (Float16)v).ToArray(), i.Shape)
            : OrtValue.CreateTensorValueFromMemory(i.Values, i.Shape)).ToList();
        try
        {
            using var runOptions = new RunOptions();
            using var outputs = session.Run(runOptions, [.. inputs.Select(i => i.Name)], values, [session.OutputNames[0]]);
            return outputs[0].GetTensorTypeAndShape().ElementDataType == TensorElementType.Float16
                ? [.. outputs[0].GetTensorDataAsSpan<Float16>().ToArray().Select(v => (float)v)]
                : outputs[0].GetTensorDataAsSpan<float>().ToArray();
        }
        finally
        {
            values.ForEach(v => v.Dispose());
        }
    }

    private static InferenceSession Session(ModelProto model, string folder, bool cuda, Action<SessionOptions>? configure = null, bool cudaGraph = false)
    {
        using var options = new SessionOptions();
        options.AddSessionConfigEntry("session.model_external_initializers_file_folder_path", folder);
        if (cuda)
        {
            using var provider = new OrtCUDAProviderOptions();
            if (cudaGraph)
            {
                provider.UpdateOptions(new Dictionary<string, string> { ["enable_cuda_graph"] = "1" });
            }

            options.AppendExecutionProvider_CUDA(provider);
        }

        configure?.Invoke(options);
        return new InferenceSession(model.ToByteArray(), options);
    }

    private static void RequireCuda()
    {
        Fixtures.Require();
        if (!OrtEnv.Instance().GetAvailableProviders().Contains("CUDAExecutionProvider"))
        {
            Assert.Skip("The CUDA execution provider is not in this ONNX Runtime build: build the tests with -p:UseCuda=true and run them on a CUDA machine.");
        }
    }
}
