using Microsoft.ML.OnnxRuntime;
using StableDiffusion.ExecutionProviders;
using StableDiffusion.Pipelines;
using Xunit;

namespace StableDiffusion.Core.Tests.Gpu;

/// <summary>
/// The CUDA provider end to end. They need ONNX Runtime's CUDA package (build with -p:UseCuda=true), a GPU, and
/// SD_CUDA_MODEL naming a model folder; elsewhere (CI runs on CPUs) they skip and say so.
/// </summary>
[Trait("Category", "Gpu")]
public sealed class CudaProviderTests
{
    private const string ModelVariable = "SD_CUDA_MODEL";

    [Fact]
    public async Task Cuda_LoadsAndGenerates()
    {
        string model = RequireCuda();
        using var pipe = await StableDiffusionPipeline.FromPretrainedAsync(model, Options(ioBinding: null), TestContext.Current.CancellationToken);
        using GenerationResult result = await pipe.GenerateAsync(Request(), TestContext.Current.CancellationToken);

        Assert.True(pipe.UNet.UsesDeviceBinding, "On CUDA the UNet should be bound in device memory by default.");
        Assert.Equal([1, 512, 512, 3], result.ImageTensor.Lengths.ToArray());
        Assert.Equal(6, result.Timings.UNetCalls);
        Assert.All(result.Latents.AsSpan().ToArray(), v => Assert.True(float.IsFinite(v), "latents must be finite"));
    }

    [Fact]
    public async Task DeviceBinding_GivesThePlainRunsLatents()
    {
        string model = RequireCuda();
        float[] plain = await LatentsAsync(model, Options(ioBinding: false));
        float[] bound = await LatentsAsync(model, Options(ioBinding: true));

        Testing.ArrayAssert.Close(plain, bound, 2e-3, "IOBinding vs plain Run (fp16 tolerance)");
    }

    [Fact]
    public async Task CudaGraph_GivesTheSameStaticShapeRunsLatents()
    {
        // Fixed shapes let ONNX Runtime pick other kernels than dynamic ones (fp16 results then differ by rounding), so the
        // replayed graph is compared with the same static-shape session run without a graph.
        string model = RequireCuda();
        float[] plain = await LatentsAsync(model, Options(ioBinding: true) with { StaticShape = new StaticShapeOptions() });
        StableDiffusionPipelineOptions graph = Options(ioBinding: true) with
        {
            StaticShape = new StaticShapeOptions(),
            ComponentSessions = new Dictionary<string, SessionSettings>
            {
                ["unet"] = new() { ExecutionProvider = ExecutionProvider.Cuda(0, new Dictionary<string, string> { ["enable_cuda_graph"] = "1" }) },
            },
        };

        float[] first = await LatentsAsync(model, graph, runs: 2);

        Testing.ArrayAssert.Close(plain, first, 2e-3, "CUDA graph replay vs the same session without a graph (fp16 tolerance)");
    }

    private static async Task<float[]> LatentsAsync(string model, StableDiffusionPipelineOptions options, int runs = 1)
    {
        using var pipe = await StableDiffusionPipeline.FromPretrainedAsync(model, options, TestContext.Current.CancellationToken);
        float[] latents = [];
        for (int i = 0; i < runs; i++)
        {
            // Later runs replay a captured CUDA graph: they must give what the first gave.
            using GenerationResult result = await pipe.GenerateAsync(Request(), TestContext.Current.CancellationToken);
            float[] current = result.Latents.AsSpan().ToArray();
            if (i > 0)
            {
                Testing.ArrayAssert.Close(latents, current, 2e-3, $"run {i + 1} vs run 1");
            }

            latents = current;
        }

        return latents;
    }

    private static TextToImageRequest Request() => new("a photo of an astronaut riding a horse on mars") { Seed = 42, NumInferenceSteps = 5 };

    private static StableDiffusionPipelineOptions Options(bool? ioBinding) => new()
    {
        Session = new SessionSettings { ExecutionProvider = ExecutionProvider.Cuda(), IoBinding = ioBinding },
        EnableSafetyChecker = false,
    };

    private static string RequireCuda()
    {
        if (!OrtEnv.Instance().GetAvailableProviders().Contains("CUDAExecutionProvider"))
        {
            Assert.Skip("The CUDA execution provider is not in this ONNX Runtime build: build the tests with -p:UseCuda=true and run them on a CUDA machine.");
        }

        string? model = Environment.GetEnvironmentVariable(ModelVariable);
        if (string.IsNullOrEmpty(model))
        {
            Assert.Skip($"Set {ModelVariable} to a Stable Diffusion ONNX model folder to run the CUDA tests.");
        }

        return model;
    }
}
