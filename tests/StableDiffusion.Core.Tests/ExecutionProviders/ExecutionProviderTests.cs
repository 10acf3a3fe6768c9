using Microsoft.ML.OnnxRuntime;
using StableDiffusion.ExecutionProviders;
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
    public async Task MissingProvider_FailsAtLoadNamingThePackageToAdd(string provider, string package)
    {
        Fixtures.Require();
        Assert.SkipWhen(OrtEnv.Instance().GetAvailableProviders().Contains(SessionOptionsFactory.OrtName(new ExecutionProvider { Name = provider })),
            $"{provider} is available in this build.");
        var options = new StableDiffusionPipelineOptions { Session = new SessionSettings { ExecutionProvider = new ExecutionProvider { Name = provider } } };

        var ex = await Assert.ThrowsAsync<ExecutionProviderException>(() => StableDiffusionPipeline.FromPretrainedAsync(Fixtures.TinyModel, options, TestContext.Current.CancellationToken));

        Assert.Contains(provider, ex.Message, StringComparison.Ordinal);
        Assert.Contains(package, ex.Message, StringComparison.Ordinal);
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
        // The pipeline compares this name with "CUDAExecutionProvider" to choose the CUDA device thread and IOBinding.
        Assert.Equal(ortName, SessionOptionsFactory.OrtName(new ExecutionProvider { Name = name }));
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
