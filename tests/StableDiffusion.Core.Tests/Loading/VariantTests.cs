using System.Text.Json.Nodes;
using StableDiffusion.Core.Tests.Hardening.Support;
using StableDiffusion.Core.Tests.Onnx.Support;
using StableDiffusion.ExecutionProviders;
using StableDiffusion.Loading;
using StableDiffusion.Models;
using StableDiffusion.Pipelines;
using StableDiffusion.Testing;
using StableDiffusion.Weights;
using Xunit;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace StableDiffusion.Core.Tests.Loading;

/// <summary>
/// diffusers' <c>variant</c>, sharded checkpoints and <c>torch_dtype</c>-like precision on copies of tiny-sd made by the
/// tests (float16 files written from the float32 ones into a temporary folder).
/// </summary>
[Trait("Area", "WeightsLoading")]
public sealed class VariantTests
{
    private static readonly TextToImageRequest Request = new("a lighthouse on a cliff") { Seed = 3, NumInferenceSteps = 3, Height = 64, Width = 64 };

    [Fact]
    public async Task Fp16Variant_LoadsTheFp16Files_FallingBackPerComponentToThePlainOnes()
    {
        using ModelFolderCopy folder = ModelFolderCopy.Of(Fixtures.PathOf("tiny-sd"));
        // The UNet has only the variant (so loading it proves the variant was taken), the VAE both, the encoders only the plain file.
        WriteFloat16(folder, "unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors");
        folder.Delete("unet/diffusion_pytorch_model.safetensors");
        WriteFloat16(folder, "vae/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.fp16.safetensors");
        float[] float32 = await ImageAsync(Fixtures.PathOf("tiny-sd"), new StableDiffusionPipelineOptions());

        float[] fp16 = await ImageAsync(folder.Path, new StableDiffusionPipelineOptions { Variant = "fp16" });

        // Weights rounded to float16 (computed in float32 on the CPU) move the image a little, and only a little.
        double difference = float32.Zip(fp16, (a, b) => Math.Abs(a - b)).Max();
        Assert.InRange(difference, 1e-6, 5e-3);
    }

    [Fact]
    public async Task WithoutTheVariant_AFolderWithOnlyFp16Files_NamesWhatItLookedFor()
    {
        using ModelFolderCopy folder = ModelFolderCopy.Of(Fixtures.PathOf("tiny-sd"));
        WriteFloat16(folder, "unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors");
        folder.Delete("unet/diffusion_pytorch_model.safetensors");

        Exception? error = await Record.ExceptionAsync(() => ImageAsync(folder.Path, new StableDiffusionPipelineOptions()));

        ExceptionAssert.Specific(error, typeof(ModelLoadException), ["unet", "diffusion_pytorch_model.safetensors"]);
    }

    [Fact]
    public async Task ShardedUNet_WithItsIndex_GivesTheImageOfTheSingleFile()
    {
        using ModelFolderCopy folder = ModelFolderCopy.Of(Fixtures.PathOf("tiny-sd"));
        string unet = folder.PathOf("unet/diffusion_pytorch_model.safetensors");
        var map = new JsonObject();
        using (SafetensorsFile source = SafetensorsFile.Open(Fixtures.PathOf("tiny-sd/unet/diffusion_pytorch_model.safetensors")))
        {
            foreach ((string shard, bool down) in new[] { ("diffusion_pytorch_model-00001-of-00002.safetensors", true), ("diffusion_pytorch_model-00002-of-00002.safetensors", false) })
            {
                WeightFiles.Rewrite(source, folder.PathOf($"unet/{shard}"), name => name.StartsWith("down_blocks.", StringComparison.Ordinal) == down ? name : null);
                foreach (SafetensorsTensor tensor in source.Tensors.Where(t => t.Name.StartsWith("down_blocks.", StringComparison.Ordinal) == down))
                {
                    map[tensor.Name] = shard;
                }
            }
        }

        File.Delete(unet);
        folder.Write("unet/diffusion_pytorch_model.safetensors.index.json", new JsonObject { ["metadata"] = new JsonObject(), ["weight_map"] = map }.ToJsonString());

        float[] sharded = await ImageAsync(folder.Path, new StableDiffusionPipelineOptions());

        ArrayAssert.Close(await ImageAsync(Fixtures.PathOf("tiny-sd"), new StableDiffusionPipelineOptions()), sharded, 1e-6, "sharded UNet");
    }

    [Fact]
    public async Task StaticShape_WithBuiltGraphs_GivesTheImageOfDynamicShapes()
    {
        Fixtures.Require();
        var shape = new StaticShapeOptions { Height = 64, Width = 64 };

        float[] fixedShapes = await ImageAsync(Fixtures.PathOf("tiny-sd"), new StableDiffusionPipelineOptions { StaticShape = shape });

        ArrayAssert.Close(await ImageAsync(Fixtures.PathOf("tiny-sd"), new StableDiffusionPipelineOptions()), fixedShapes, 1e-5, "static shape");
    }

    [Fact]
    public void ComputePrecision_DefaultsToTheProvidersAndFollowsTheCaller()
    {
        var cpu = new SessionSettings();
        var cuda = new SessionSettings { ExecutionProvider = ExecutionProvider.Cuda() };

        Assert.Equal(TensorElementType.Float, ComponentRegistry.ComputeTypeFor(cpu, null));
        Assert.Equal(TensorElementType.Float16, ComponentRegistry.ComputeTypeFor(cuda, null));
        Assert.Equal(TensorElementType.Float16, ComponentRegistry.ComputeTypeFor(cpu, ComputePrecision.Float16));
        Assert.Equal(TensorElementType.Float, ComponentRegistry.ComputeTypeFor(cuda, ComputePrecision.Float32));
    }

    private static async Task<float[]> ImageAsync(string model, StableDiffusionPipelineOptions options)
    {
        using var pipe = await StableDiffusionPipeline.FromPretrainedAsync(model, options, TestContext.Current.CancellationToken);
        using GenerationResult result = await pipe.GenerateAsync(Request, TestContext.Current.CancellationToken);
        return result.ImageTensor.AsSpan().ToArray();
    }

    private static void WriteFloat16(ModelFolderCopy folder, string source, string target)
    {
        using SafetensorsFile file = SafetensorsFile.Open(folder.PathOf(source));
        WeightFiles.Rewrite(file, folder.PathOf(target), name => name, dtype: "F16");
    }
}
