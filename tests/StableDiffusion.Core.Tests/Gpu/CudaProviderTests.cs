using Microsoft.ML.OnnxRuntime;
using StableDiffusion.Core.Tests.EndToEnd.Support;
using StableDiffusion.ExecutionProviders;
using StableDiffusion.Models;
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
    // float16 runs that may pick other kernels (bound vs host buffers, replayed vs launched): a few float16 roundings after
    // six steps, relative to the largest latent (the fused full-size export's random weights give latents near 20).
    private const double Float16Relative = 5e-3;

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

        Testing.ArrayAssert.CloseRelative(plain, bound, Float16Relative, "IOBinding vs plain Run");
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

        Testing.ArrayAssert.CloseRelative(plain, first, Float16Relative, "CUDA graph replay vs the same session without a graph");
    }

    [Fact]
    public async Task ExtraUNetInput_IsBoundInDeviceMemory_AndReadByEveryGraphReplay()
    {
        // A stand-in UNet that adds an extra input (timestep_cond, a per-channel offset) to its prediction, beside the model's
        // own text encoder and VAE: what a contributor writes must reach the graph through device binding and a captured
        // CUDA graph, including a new value in a later generation that replays the graph.
        string model = RequireCuda();
        string folder = WithStandInUNet(model);
        try
        {
            StableDiffusionPipelineOptions plain = Options(ioBinding: false) with { StaticShape = new StaticShapeOptions() };
            StableDiffusionPipelineOptions graph = Options(ioBinding: true) with
            {
                StaticShape = new StaticShapeOptions(),
                ComponentSessions = new Dictionary<string, SessionSettings>
                {
                    ["unet"] = new() { ExecutionProvider = ExecutionProvider.Cuda(0, new Dictionary<string, string> { ["enable_cuda_graph"] = "1" }) },
                },
            };
            float[][] offsets = [[0.5f, -0.25f, 1f, 2f], [-1f, 0.75f, 0f, -0.5f]];
            using var plainPipe = await StableDiffusionPipeline.FromPretrainedAsync(folder, plain, TestContext.Current.CancellationToken);
            using var graphPipe = await StableDiffusionPipeline.FromPretrainedAsync(folder, graph, TestContext.Current.CancellationToken);

            Assert.True(graphPipe.UNet.UsesCudaGraph && graphPipe.UNet.UsesDeviceBinding);
            var expected = new List<float[]>();
            foreach (float[] offset in offsets)
            {
                // 512x512 is StaticShapeOptions' default, whatever the model's own size.
                TextToImageRequest request = Request() with { Height = 512, Width = 512, UNetInputs = [new ChannelOffset(offset)] };
                using GenerationResult reference = await plainPipe.GenerateAsync(request, TestContext.Current.CancellationToken);
                using GenerationResult replayed = await graphPipe.GenerateAsync(request, TestContext.Current.CancellationToken);
                expected.Add(reference.Latents.AsSpan().ToArray());
                Testing.ArrayAssert.CloseRelative(expected[^1], replayed.Latents.AsSpan().ToArray(), Float16Relative, $"CUDA graph vs plain run, offset [{string.Join(", ", offset)}]");
            }

            (double difference, _) = Testing.ArrayAssert.MaxAbsDifference(expected[0], expected[1]);
            Assert.True(difference > 0.1, $"The two offsets should give other latents; they differ by {difference:G3}.");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
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
                Testing.ArrayAssert.CloseRelative(latents, current, Float16Relative, $"run {i + 1} vs run 1");
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

    /// <summary>A folder linking <paramref name="model"/>'s components, with its UNet replaced by the stand-in with an offset input.</summary>
    private static string WithStandInUNet(string model)
    {
        string folder = Path.Combine(Path.GetTempPath(), "sd-gpu-models", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Combine(folder, "unet"));
        foreach (string entry in Directory.EnumerateFileSystemEntries(model).Where(e => Path.GetFileName(e) != "unet"))
        {
            string link = Path.Combine(folder, Path.GetFileName(entry));
            _ = Directory.Exists(entry) ? Directory.CreateSymbolicLink(link, entry) : File.CreateSymbolicLink(link, entry);
        }

        File.WriteAllBytes(Path.Combine(folder, "unet", "model.onnx"), ConventionGraphs.UNetWithOffset("timestep_cond", hiddenSize: "hidden"));
        return folder;
    }

    /// <summary>Writes the same per-channel offset on every row of the UNet's <c>timestep_cond</c>, on the first step.</summary>
    private sealed class ChannelOffset(float[] offset) : IUNetInputContributor
    {
        public IReadOnlyCollection<string> InputNames { get; } = ["timestep_cond"];

        public void Contribute(in UNetStep step, UNetInputs inputs)
        {
            if (step.Index == 0)
            {
                UNetInput input = inputs["timestep_cond"];
                input.Write(Enumerable.Range(0, input.Length).Select(i => offset[i % offset.Length]).ToArray());
            }
        }
    }

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
