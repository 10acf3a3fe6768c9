using Microsoft.ML.OnnxRuntime;
using StableDiffusion.ExecutionProviders;
using StableDiffusion.ExecutionProviders.Families;
using StableDiffusion.Models;
using StableDiffusion.Pipelines;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.ExecutionProviders;

public sealed class ExecutionProviderTests
{
    [Theory]
    [InlineData("CUDA", "Microsoft.ML.OnnxRuntime.Gpu")]
    [InlineData("TensorRT", "Microsoft.ML.OnnxRuntime.Gpu")]
    [InlineData("DirectML", "Microsoft.ML.OnnxRuntime.DirectML")]
    [InlineData("OpenVINO", "Intel.ML.OnnxRuntime.OpenVino")]
    [InlineData("ROCm", "an ONNX Runtime build with ROCm")]
    [InlineData("MIGraphX", "an ONNX Runtime build with MIGraphX")]
    public async Task MissingProvider_FailsAtLoadNamingThePackageToAdd(string provider, string package)
    {
        Fixtures.Require();
        Assert.SkipWhen(OrtEnv.Instance().GetAvailableProviders().Contains(ExecutionProviderFamily.Of(new ExecutionProvider { Name = provider }).OrtName),
            $"{provider} is available in this build.");
        var options = new StableDiffusionPipelineOptions { Session = new SessionSettings { ExecutionProvider = new ExecutionProvider { Name = provider } } };

        var ex = await Assert.ThrowsAsync<ExecutionProviderException>(() => StableDiffusionPipeline.FromPretrainedAsync(Fixtures.TinyModel, options, TestContext.Current.CancellationToken));

        Assert.Contains(provider, ex.Message, StringComparison.Ordinal);
        Assert.Contains(package, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("CPU")]
    [InlineData("CUDA")]
    [InlineData("DirectML")]
    [InlineData("SomeoneElsesExecutionProvider")]
    public void IsAvailable_SaysWhetherTheInstalledNativePackageHasTheProvider(string provider)
    {
        string[] installed = OrtEnv.Instance().GetAvailableProviders();
        var executionProvider = new ExecutionProvider { Name = provider };

        Assert.Equal(installed.Contains(ExecutionProviderFamily.Of(executionProvider).OrtName, StringComparer.OrdinalIgnoreCase), executionProvider.IsAvailable);
        Assert.True(ExecutionProvider.Cpu.IsAvailable);
    }

    [Theory]
    [InlineData("CUDA", "CUDAExecutionProvider")]
    [InlineData("cuda", "CUDAExecutionProvider")]
    [InlineData("CUDAExecutionProvider", "CUDAExecutionProvider")]
    [InlineData("cudaexecutionprovider", "CUDAExecutionProvider")]
    [InlineData("cudaExecutionProvider", "CUDAExecutionProvider")]
    [InlineData("TENSORRTEXECUTIONPROVIDER", "TensorrtExecutionProvider")]
    [InlineData("dml", "DmlExecutionProvider")]
    [InlineData("dmlexecutionprovider", "DmlExecutionProvider")]
    [InlineData("rocmExecutionProvider", "ROCMExecutionProvider")]
    [InlineData("MyExecutionProvider", "MyExecutionProvider")]
    public void OrtName_GivesOnnxRuntimesNameForOursOrItsOwnInAnyCase(string name, string ortName)
    {
        // The family decides the device thread, IOBinding and graph capture; its name is what ONNX Runtime lists.
        Assert.Equal(ortName, ExecutionProviderFamily.Of(new ExecutionProvider { Name = name }).OrtName);
    }

    [Theory]
    [InlineData("CPU", false, null)]
    [InlineData("CUDA", true, "enable_cuda_graph")]
    [InlineData("TensorRT", true, "trt_cuda_graph_enable")]
    [InlineData("DirectML", false, null)]
    [InlineData("CoreML", false, null)]
    [InlineData("OpenVINO", false, null)]
    [InlineData("ROCm", false, null)]
    [InlineData("MIGraphX", false, null)]
    [InlineData("QNNExecutionProvider", false, null)]
    public void Family_SaysWhetherItNeedsADeviceThread_AndWhichOptionCapturesGraphs(string name, bool deviceThread, string? graphOption)
    {
        var plain = new ExecutionProvider { Name = name };
        ExecutionProviderFamily family = ExecutionProviderFamily.Of(plain);

        Assert.Equal(deviceThread, family.NeedsDeviceThread);
        Assert.Equal(graphOption, family.GraphCaptureOption);
        Assert.False(family.CapturesGraphs(plain));
        // Another family's option turns nothing on.
        Assert.Equal(graphOption == "enable_cuda_graph", family.CapturesGraphs(plain with { Options = new Dictionary<string, string> { ["enable_cuda_graph"] = "1" } }));
        if (graphOption is not null)
        {
            Assert.True(family.CapturesGraphs(plain with { Options = new Dictionary<string, string> { [graphOption] = "true" } }));
        }
    }

    [Theory]
    [InlineData("CPU", null, true)]
    [InlineData("CPU", false, false)]
    [InlineData("CUDA", null, false)]
    [InlineData("CUDA", true, true)]
    [InlineData("DirectML", null, false)]
    [InlineData("OpenVINO", null, false)]
    public void AllowSpinning_DefaultsToSpinningOnTheCpuProviderOnly(string name, bool? allowSpinning, bool spins)
    {
        var settings = new SessionSettings { ExecutionProvider = new ExecutionProvider { Name = name }, AllowSpinning = allowSpinning };

        Assert.Equal(spins, settings.Spins);
    }

    [Theory]
    [InlineData("CPU", null, null, true)]
    [InlineData("CPU", false, null, false)]
    [InlineData("CUDA", null, null, false)]
    [InlineData("CUDA", true, null, true)]
    [InlineData("CUDA", null, "enable_cuda_graph", true)]
    [InlineData("TensorRT", null, null, false)]
    [InlineData("TensorRT", null, "trt_cuda_graph_enable", true)]
    [InlineData("DirectML", null, null, false)]
    [InlineData("OpenVINO", null, null, true)]
    public void EnableMemoryPattern_DefaultsToPlanningExceptOnCudaWithoutGraphsAndDirectML(string name, bool? enableMemoryPattern, string? graphOption, bool plans)
    {
        var options = new Dictionary<string, string>();
        if (graphOption is not null)
        {
            options[graphOption] = "1";
        }

        var settings = new SessionSettings { ExecutionProvider = new ExecutionProvider { Name = name, Options = options }, EnableMemoryPattern = enableMemoryPattern };

        Assert.Equal(plans, settings.PlansMemory);
    }

    [Fact]
    public void EnableMemoryPattern_Off_IsRefusedForAGraphCapturingSession()
    {
        var settings = new SessionSettings
        {
            ExecutionProvider = ExecutionProvider.Cuda(0, new Dictionary<string, string> { ["enable_cuda_graph"] = "1" }),
            EnableMemoryPattern = false,
        };

        var error = Assert.Throws<ExecutionProviderException>(() => SessionOptionsFactory.Create(settings, "unet"));

        Assert.Contains("unet", error.Message, StringComparison.Ordinal);
        Assert.Contains("enable_cuda_graph", error.Message, StringComparison.Ordinal);
        Assert.Contains("EnableMemoryPattern", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(null, true)]
    [InlineData(false, false)]
    public void SessionOptions_TakeTheMemoryPatternChoice(bool? enableMemoryPattern, bool expected)
    {
        using SessionOptions options = SessionOptionsFactory.Create(new SessionSettings { EnableMemoryPattern = enableMemoryPattern }, "unet");

        Assert.Equal(expected, options.EnableMemoryPattern);
    }

    [Fact]
    public void HostFamilies_BindHostBuffers()
    {
        foreach (string name in new[] { "CPU", "DirectML", "CoreML", "OpenVINO", "ROCm", "MIGraphX", "QNNExecutionProvider" })
        {
            Assert.Null(ExecutionProviderFamily.Of(new ExecutionProvider { Name = name }).CreateDeviceMemory(new ExecutionProvider { Name = name }));
        }
    }

    [Fact]
    public void Cuda_GrowsItsArenaByWhatIsAsked_UnlessTheCallerChoosesOtherwise()
    {
        Dictionary<string, string> defaults = CudaProvider.ProviderOptions(ExecutionProvider.Cuda(1, new Dictionary<string, string> { ["enable_cuda_graph"] = "1" }));
        Dictionary<string, string> chosen = CudaProvider.ProviderOptions(
            ExecutionProvider.Cuda(0, new Dictionary<string, string> { ["arena_extend_strategy"] = "kNextPowerOfTwo" }));

        Assert.Equal("kSameAsRequested", defaults["arena_extend_strategy"]);
        Assert.Equal("1", defaults["device_id"]);
        Assert.Equal("1", defaults["enable_cuda_graph"]);
        Assert.Equal("kNextPowerOfTwo", chosen["arena_extend_strategy"]);
    }

    [Fact]
    public void StaticShape_FixesTheSafetyCheckersBatchAndChannels_NotItsTwoKindsOfHeight()
    {
        var shape = new StaticShapeOptions { Height = 512, Width = 512, ImagesPerCall = 4 };

        IReadOnlyDictionary<string, long> checker = shape.DimensionsFor(ModelComponents.SafetyChecker, 8, 4, vaeSlicing: false);

        // Image by image, whatever the batch; an export's height is 224 in clip_input and 512 in images.
        Assert.Equal(new Dictionary<string, long> { ["batch"] = 1, ["channels"] = 3 }, checker);
    }

    [Fact]
    public async Task StaticShape_RunsItsShapeAndRejectsOthers()
    {
        Fixtures.Require();
        var options = new StableDiffusionPipelineOptions { StaticShape = new StaticShapeOptions { Height = 64, Width = 64 } };
        using var pipe = await StableDiffusionPipeline.FromPretrainedAsync(Fixtures.TinyModel, options, TestContext.Current.CancellationToken);
        using var dynamicPipe = await StableDiffusionPipeline.FromPretrainedAsync(Fixtures.TinyModel, cancellationToken: TestContext.Current.CancellationToken);
        var request = new TextToImageRequest("a castle") { Seed = 3, NumInferenceSteps = 4, Height = 64, Width = 64 };

        using GenerationResult fixedShape = await pipe.GenerateAsync(request, TestContext.Current.CancellationToken);
        using GenerationResult anyShape = await dynamicPipe.GenerateAsync(request, TestContext.Current.CancellationToken);
        var ex = await Assert.ThrowsAsync<ArgumentException>(() => pipe.GenerateAsync(request with { Height = 72 }, TestContext.Current.CancellationToken));

        ArrayAssert.Close(anyShape.ImageTensor.AsSpan(), fixedShape.ImageTensor.AsSpan(), 1e-5, "static vs dynamic shapes");
        Assert.Contains("StaticShape", ex.Message, StringComparison.Ordinal);
    }
}
