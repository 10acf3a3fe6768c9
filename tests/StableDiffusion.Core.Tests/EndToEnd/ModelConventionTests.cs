using System.Numerics.Tensors;
using StableDiffusion.Core.Tests.EndToEnd.Support;
using StableDiffusion.Core.Tests.Hardening.Drills;
using StableDiffusion.Core.Tests.Hardening.Support;
using StableDiffusion.Imaging;
using StableDiffusion.Onnx;
using StableDiffusion.Pipelines;
using StableDiffusion.Randomness;
using StableDiffusion.Schedulers;
using StableDiffusion.Testing;
using Xunit;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace StableDiffusion.Core.Tests.EndToEnd;

/// <summary>
/// The input conventions of published exports (UNet timestep type and shape, float16 graphs) give the image the float32
/// convention gives, through the public API: the same stand-in computation is exported in each convention
/// (<see cref="ConventionGraphs"/>) and the pipeline's results are compared.
/// </summary>
[Trait("Area", "Loading")]
public sealed class ModelConventionTests
{
    private const TensorElementType F32 = TensorElementType.Float;
    private const TensorElementType F16 = TensorElementType.Float16;
    private const TensorElementType I64 = TensorElementType.Int64;
    private const TensorElementType I32 = TensorElementType.Int32;

    private static readonly TextToImageRequest Castle = new("a castle on a hill") { Seed = 3, NumInferenceSteps = 4, Height = 64, Width = 64 };

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string, TensorElementType, object[]> TimestepConventions => new()
    {
        { "float32 [batch]", F32, ["batch"] },
        { "float32 scalar", F32, [] },
        { "float16 [1]", F16, [1] },
        { "float16 [batch]", F16, ["batch"] },
        { "float16 scalar", F16, [] },
        { "int64 [1]", I64, [1] },
        { "int64 [batch]", I64, ["batch"] },
        { "int64 scalar", I64, [] },
        { "int32 [batch]", I32, ["batch"] },
    };

    [Theory]
    [MemberData(nameof(TimestepConventions))]
    public async Task UNetTimestep_AnyTypeAndShape_GivesTheFloat32VectorImage(string convention, TensorElementType timestepType, object[] dimensions)
    {
        using ModelFolderCopy reference = Model(F32, F32, F32, [1]);
        using ModelFolderCopy variant = Model(F32, F32, timestepType, dimensions);

        // Two prompts with guidance make a UNet batch of 4: a timestep of shape [batch] must carry the value on every row.
        TextToImageRequest request = Castle with { Prompts = ["a castle on a hill", "a lighthouse"] };
        using GenerationResult expected = await GenerateAsync(reference, request);
        using GenerationResult actual = await GenerateAsync(variant, request);

        // PNDM's timesteps are integers below 1000, exact in every one of these types.
        ResultAssert.Identical(expected, actual, $"timestep {convention} vs float32 [1]");
    }

    [Theory]
    [InlineData(I64)]
    [InlineData(I32)]
    public async Task IntegerTimestepUNet_TakesFractionalTimesteps_AsTheFloat32GraphDoes(TensorElementType timestepType)
    {
        // Euler's linspace timesteps for 7 steps are fractional (832.5, 666, 499.5, ...): diffusers' PyTorch UNet embeds them
        // whole, so an export whose integer timestep is only cast to float is loaded to take them whole too.
        using ModelFolderCopy reference = Model(F32, F32, F32, [1]);
        using ModelFolderCopy integer = Model(F32, F32, timestepType, ["batch"]);
        TextToImageRequest request = Castle with { NumInferenceSteps = 7, Scheduler = Euler };

        using StableDiffusionPipeline integerPipe = await StableDiffusionPipeline.FromPretrainedAsync(integer.Path, WithoutSafetyChecker, Ct);
        using GenerationResult expected = await GenerateAsync(reference, request);
        using GenerationResult actual = await integerPipe.GenerateAsync(request, Ct);

        IScheduler schedule = Euler;
        schedule.SetTimesteps(7);
        Assert.Contains(schedule.Timesteps, t => t != MathF.Truncate(t));
        Assert.Equal(TensorElementType.Float, integerPipe.UNet.TimestepType);
        Assert.False(integerPipe.UNet.HasIntegerTimestep);
        ResultAssert.Identical(expected, actual, "integer timestep graph vs float32 graph, fractional timesteps");
    }

    [Fact]
    public async Task IntegerTimestepReadAsInteger_StaysInteger_AndFractionalTimestepsAreTruncated()
    {
        // A graph that also reads its int64 timestep as an integer cannot be retyped: it keeps integer timesteps, which
        // truncate fractional ones (diffusers' ONNX pipelines do the same), so its image differs from the float graph's.
        using ModelFolderCopy reference = Model(F32, F32, F32, [1]);
        using ModelFolderCopy integer = Model(F32, F32, I64, ["batch"]);
        integer.Write("unet/model.onnx", ConventionGraphs.UNet(F32, I64, ["batch"], readsTimestepAsIs: true));
        TextToImageRequest request = Castle with { NumInferenceSteps = 7, Scheduler = Euler };

        using StableDiffusionPipeline integerPipe = await StableDiffusionPipeline.FromPretrainedAsync(integer.Path, WithoutSafetyChecker, Ct);
        using GenerationResult expected = await GenerateAsync(reference, request);
        using GenerationResult actual = await integerPipe.GenerateAsync(request, Ct);

        Assert.True(integerPipe.UNet.HasIntegerTimestep);
        (double difference, _) = ArrayAssert.MaxAbsDifference(GenerationBytes.Flatten(expected.Latents), GenerationBytes.Flatten(actual.Latents));
        Assert.True(difference > 0, "Truncated timesteps should give other latents than whole ones.");
    }

    [Fact]
    public async Task UNetTimestep_IsWhatTheGraphSees()
    {
        // The test above catches a wrong timestep value only because the stand-in's output depends on it: the same
        // stand-in with the timestep's weight set to zero gives another image.
        using ModelFolderCopy reference = Model(F32, F32, F32, [1]);
        using ModelFolderCopy timestepless = Model(F32, F32, F32, [1]);
        timestepless.Write("unet/model.onnx", ConventionGraphs.UNet(F32, F32, [1], timestepWeight: 0f));

        using GenerationResult expected = await GenerateAsync(reference, Castle);
        using GenerationResult actual = await GenerateAsync(timestepless, Castle);

        (double difference, _) = ArrayAssert.MaxAbsDifference(GenerationBytes.Flatten(expected.Latents), GenerationBytes.Flatten(actual.Latents));
        Assert.True(difference > 0.1, $"A UNet that ignores the timestep should give other latents, but they differ by at most {difference:G3}.");
    }

    [Fact]
    public async Task Float16Model_GivesTheFloat32Image_WithinHalfPrecision()
    {
        using ModelFolderCopy single = Model(F32, F32, F32, [1]);
        using ModelFolderCopy half = Model(F16, F16, F16, [1]);
        // fp16 pipelines draw their noise in float16 (another stream), so both start from the same given latents.
        var noise = new float[2 * 4 * 8 * 8];
        new TorchCpuGenerator(11).FillStandardNormal(noise);
        TextToImageRequest request = Castle with { Prompts = ["a castle on a hill", "a lighthouse"], Latents = Tensor.Create(noise, [2, 4, 8, 8]) };

        using GenerationResult expected = await GenerateAsync(single, request);
        using GenerationResult actual = await GenerateAsync(half, request);

        // Embeddings, UNet inputs and outputs and the decoded image each round to float16 (relative error 2^-11): the
        // embeddings (below 0.5) by at most half an ulp, the latents (measured: 2.4 ulps) and images (1 ulp) by a few.
        ArrayAssert.Close(GenerationBytes.Flatten(expected.PromptEmbeds), GenerationBytes.Flatten(actual.PromptEmbeds), 1.25e-4, "prompt embeddings");
        ArrayAssert.CloseRelative(GenerationBytes.Flatten(expected.Latents), GenerationBytes.Flatten(actual.Latents), 5e-3, "final latents");
        ResultAssert.Close(expected, actual, 2e-3, "images");
    }

    [Fact]
    public async Task Float16VaeEncoder_GivesTheFloat32ImageToImage_WithinHalfPrecision()
    {
        // Only the encoder differs, so both draw the same noise from the seed.
        using ModelFolderCopy single = Model(F32, F32, F32, [1]);
        using ModelFolderCopy half = Model(F32, F32, F32, [1], encoderType: F16);
        RgbImage picture = TestImages.Picture();
        var request = new Img2ImgRequest("a lighthouse", picture) { Seed = 5, NumInferenceSteps = 6, Strength = 0.5 };

        using var singlePipe = StableDiffusionImg2ImgPipeline.FromPretrained(single.Path, WithoutSafetyChecker, Ct);
        using var halfPipe = StableDiffusionImg2ImgPipeline.FromPretrained(half.Path, WithoutSafetyChecker, Ct);
        using GenerationResult expected = await singlePipe.GenerateAsync(request, Ct);
        using GenerationResult actual = await halfPipe.GenerateAsync(request, Ct);

        // The image rounds to float16 on the way in; the strength-0.5 denoising then dilutes the difference (measured:
        // 3e-5 in latents of 27).
        ArrayAssert.CloseRelative(GenerationBytes.Flatten(expected.Latents), GenerationBytes.Flatten(actual.Latents), 1e-4, "final latents");
        ResultAssert.Close(expected, actual, 1e-4, "images");
    }

    private static StableDiffusionPipelineOptions WithoutSafetyChecker => new() { EnableSafetyChecker = false };

    private static IScheduler Euler => SchedulerFactory.Create("Euler", SchedulerConfig.Parse(SchedulerConfigJson.StableDiffusion15, "SD 1.5"));

    /// <summary>The tiny fixture's tokenizer and scheduler with stand-in graphs in the given conventions.</summary>
    private static ModelFolderCopy Model(TensorElementType embeddingsType, TensorElementType tensorType, TensorElementType timestepType, object[] timestepDimensions, TensorElementType? encoderType = null)
    {
        ModelFolderCopy folder = ModelFolderCopy.Of(Fixtures.TinyModel);
        folder.Delete("unet/weights.pb");
        folder.Write("text_encoder/model.onnx", ConventionGraphs.TextEncoder(I32, embeddingsType));
        folder.Write("unet/model.onnx", ConventionGraphs.UNet(tensorType, timestepType, [.. timestepDimensions.Select(d => d is string name ? (Dim)name : (Dim)(int)d)]));
        folder.Write("vae_decoder/model.onnx", ConventionGraphs.VaeDecoder(tensorType));
        folder.Write("vae_encoder/model.onnx", ConventionGraphs.VaeEncoder(encoderType ?? tensorType));
        return folder;
    }

    private static async Task<GenerationResult> GenerateAsync(ModelFolderCopy model, TextToImageRequest request)
    {
        using StableDiffusionPipeline pipe = await StableDiffusionPipeline.FromPretrainedAsync(model.Path, WithoutSafetyChecker, Ct);
        return await pipe.GenerateAsync(request, Ct);
    }
}
