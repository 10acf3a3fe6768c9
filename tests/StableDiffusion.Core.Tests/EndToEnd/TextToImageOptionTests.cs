using System.Numerics.Tensors;
using StableDiffusion.Core.Tests.EndToEnd.Support;
using StableDiffusion.Core.Tests.Hardening.Drills;
using StableDiffusion.Core.Tests.Hardening.Support;
using StableDiffusion.Pipelines;
using StableDiffusion.Randomness;
using StableDiffusion.Schedulers;
using StableDiffusion.Testing;
using StableDiffusion.Hub.Tests.FakeHub;
using Xunit;

namespace StableDiffusion.Core.Tests.EndToEnd;

/// <summary>Every option of a text-to-image request, through the public API on the tiny model.</summary>
[Trait("Area", "Pipeline")]
public sealed class TextToImageOptionTests(TinyPipelines pipelines)
{
    private static readonly TextToImageRequest Castle = new("a castle on a hill") { Seed = 3, NumInferenceSteps = 4, Height = 64, Width = 64 };

    private StableDiffusionPipeline Pipe => pipelines.TextToImage;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task SeveralPrompts_GiveOneImagePerPromptInOrder()
    {
        Tensor<float> latents = Noise(seed: 5, 2, 4, 8, 8);
        float[] all = GenerationBytes.Flatten(latents);

        using GenerationResult batch = await Pipe.GenerateAsync(new TextToImageRequest(["a castle on a hill", "a lighthouse at night"]) { Latents = latents, NumInferenceSteps = 4, Height = 64, Width = 64 }, Ct);
        using GenerationResult castle = await Pipe.GenerateAsync(new TextToImageRequest("a castle on a hill") { Latents = Tensor.Create(all[..256], [1, 4, 8, 8]), NumInferenceSteps = 4, Height = 64, Width = 64 }, Ct);
        using GenerationResult lighthouse = await Pipe.GenerateAsync(new TextToImageRequest("a lighthouse at night") { Latents = Tensor.Create(all[256..], [1, 4, 8, 8]), NumInferenceSteps = 4, Height = 64, Width = 64 }, Ct);

        Assert.Equal(2, batch.Images.Count);
        Assert.Equal([2, 64, 64, 3], batch.ImageTensor.Lengths.ToArray());
        float[] images = GenerationBytes.Flatten(batch.ImageTensor);
        ArrayAssert.Close(GenerationBytes.Flatten(castle.ImageTensor), images.AsSpan(0, 64 * 64 * 3), 1e-5, "first prompt of the batch");
        ArrayAssert.Close(GenerationBytes.Flatten(lighthouse.ImageTensor), images.AsSpan(64 * 64 * 3), 1e-5, "second prompt of the batch");
    }

    [Fact]
    public async Task NegativePrompt_BecomesTheUnconditionalEmbeddings()
    {
        using GenerationResult plain = await Pipe.GenerateAsync(Castle, Ct);
        using GenerationResult one = await Pipe.GenerateAsync(Castle with { NegativePrompt = "fog, blur" }, Ct);
        using GenerationResult list = await Pipe.GenerateAsync(Castle with { NegativePrompts = ["fog, blur"] }, Ct);
        using GenerationResult fog = await Pipe.GenerateAsync(Castle with { Prompts = ["fog, blur"] }, Ct);

        ResultAssert.Identical(one, list, "NegativePrompt and a one-entry NegativePrompts");
        ResultAssert.Different(plain, one, "with and without a negative prompt");
        // [unconditional, conditional]: the negative prompt's embeddings are what "fog, blur" encodes to as a prompt.
        Assert.Equal(Row(fog.PromptEmbeds, 1), Row(one.PromptEmbeds, 0));
        Assert.Equal(Row(plain.PromptEmbeds, 1), Row(one.PromptEmbeds, 1));
    }

    [Fact]
    public async Task NegativePrompts_OnePerPrompt_AreUsedInOrder()
    {
        using GenerationResult batch = await Pipe.GenerateAsync(new TextToImageRequest(["a castle", "a lighthouse"])
        {
            NegativePrompts = ["fog", "rain"], Seed = 4, NumInferenceSteps = 2, Height = 64, Width = 64,
        }, Ct);
        using GenerationResult fog = await Pipe.GenerateAsync(Castle with { Prompts = ["fog"], NumInferenceSteps = 1 }, Ct);
        using GenerationResult rain = await Pipe.GenerateAsync(Castle with { Prompts = ["rain"], NumInferenceSteps = 1 }, Ct);

        Assert.Equal([4, 77, 32], batch.PromptEmbeds.Lengths.ToArray());
        Assert.Equal(Row(fog.PromptEmbeds, 1), Row(batch.PromptEmbeds, 0));
        Assert.Equal(Row(rain.PromptEmbeds, 1), Row(batch.PromptEmbeds, 1));
    }

    [Fact]
    public async Task HeightAndWidth_SetTheImageAndLatentSizes()
    {
        using GenerationResult result = await Pipe.GenerateAsync(Castle with { Height = 32, Width = 64 }, Ct);

        Assert.Equal((64, 32), (result.Images[0].Width, result.Images[0].Height));
        Assert.Equal([1, 32, 64, 3], result.ImageTensor.Lengths.ToArray());
        Assert.Equal([1, 4, 4, 8], result.Latents.Lengths.ToArray());
    }

    [Fact]
    public async Task DefaultSize_IsTheUNetSampleSizeTimesTheVaeScale()
    {
        using ModelFolderCopy model = ModelFolderCopy.Of(Fixtures.TinyModel);
        model.Write("unet/config.json", """{"sample_size": 8}""");
        using StableDiffusionPipeline pipeline = await StableDiffusionPipeline.FromPretrainedAsync(model.Path, cancellationToken: Ct);

        using GenerationResult result = await pipeline.GenerateAsync(new TextToImageRequest("a castle") { Seed = 1, NumInferenceSteps = 2 }, Ct);

        Assert.Equal(512, Pipe.DefaultImageSize);
        Assert.Equal(64, pipeline.DefaultImageSize);
        Assert.Equal((64, 64), (result.Images[0].Width, result.Images[0].Height));
    }

    [Theory]
    [InlineData("DDIM", 5, 5)]
    [InlineData("PNDM", 5, 6)]
    [InlineData("Heun", 5, 9)]
    [InlineData("DPM++ 2M Karras", 5, 5)]
    public async Task NumInferenceSteps_SetTheSchedulesUNetCalls(string scheduler, int steps, int unetCalls)
    {
        IScheduler chosen = SchedulerFactory.Create(scheduler, Pipe.Scheduler.Config);
        var seen = new List<(int Index, int Total, float Timestep)>();
        IScheduler expected = chosen.Clone();
        expected.SetTimesteps(steps);

        using GenerationResult result = await Pipe.GenerateAsync(Castle with
        {
            NumInferenceSteps = steps, Scheduler = chosen, OnStepEnd = s => seen.Add((s.StepIndex, s.TotalSteps, s.Timestep)),
        }, Ct);

        Assert.Equal(unetCalls, result.Timings.UNetCalls);
        Assert.Equal(Enumerable.Range(0, unetCalls), seen.Select(s => s.Index));
        Assert.All(seen, s => Assert.Equal(unetCalls, s.Total));
        Assert.Equal(expected.Timesteps, seen.Select(s => s.Timestep));
    }

    [Fact]
    public async Task Guidance_IsOnOnlyAboveOne()
    {
        using GenerationResult guided = await Pipe.GenerateAsync(Castle, Ct);
        using GenerationResult one = await Pipe.GenerateAsync(Castle with { GuidanceScale = 1 }, Ct);
        using GenerationResult half = await Pipe.GenerateAsync(Castle with { GuidanceScale = 0.5f }, Ct);

        Assert.Equal([2, 77, 32], guided.PromptEmbeds.Lengths.ToArray());
        Assert.Equal([1, 77, 32], one.PromptEmbeds.Lengths.ToArray());
        ResultAssert.Identical(one, half, "guidance 1 and 0.5 (both off)");
        ResultAssert.Different(guided, one, "guidance 7.5 and off");
        Assert.Equal(guided.Timings.UNetCalls, one.Timings.UNetCalls);
    }

    [Fact]
    public async Task GuidanceRescale_ChangesTheGuidedImageOnly()
    {
        using GenerationResult plain = await Pipe.GenerateAsync(Castle, Ct);
        using GenerationResult zero = await Pipe.GenerateAsync(Castle with { GuidanceRescale = 0 }, Ct);
        using GenerationResult rescaled = await Pipe.GenerateAsync(Castle with { GuidanceRescale = 0.7f }, Ct);

        ResultAssert.Identical(plain, zero, "no rescale and rescale 0");
        ResultAssert.Different(plain, rescaled, "rescale 0 and 0.7");
    }

    [Fact]
    public async Task NumImagesPerPrompt_RepeatsEachPromptsEmbeddingsWithFreshNoise()
    {
        using GenerationResult result = await Pipe.GenerateAsync(new TextToImageRequest(["a castle", "a lighthouse"]) { NumImagesPerPrompt = 2, Seed = 9, NumInferenceSteps = 2, Height = 64, Width = 64 }, Ct);

        Assert.Equal(4, result.Images.Count);
        Assert.Equal([8, 77, 32], result.PromptEmbeds.Lengths.ToArray());
        // [u0, u0, u1, u1, c0, c0, c1, c1].
        Assert.Equal(Row(result.PromptEmbeds, 4), Row(result.PromptEmbeds, 5));
        Assert.Equal(Row(result.PromptEmbeds, 6), Row(result.PromptEmbeds, 7));
        Assert.NotEqual(Row(result.PromptEmbeds, 5), Row(result.PromptEmbeds, 6));
        float[] images = GenerationBytes.Flatten(result.ImageTensor);
        Assert.False(images.AsSpan(0, 64 * 64 * 3).SequenceEqual(images.AsSpan(64 * 64 * 3, 64 * 64 * 3)), "Two images of one prompt should differ.");
    }

    [Fact]
    public async Task Eta_MakesDdimStochastic_AndIsIgnoredByOtherSchedulers()
    {
        IScheduler ddim = SchedulerFactory.Create("DDIM", Pipe.Scheduler.Config);
        IScheduler euler = SchedulerFactory.Create("Euler", Pipe.Scheduler.Config);

        using GenerationResult ddim0 = await Pipe.GenerateAsync(Castle with { Scheduler = ddim }, Ct);
        using GenerationResult ddim1 = await Pipe.GenerateAsync(Castle with { Scheduler = ddim, Eta = 1 }, Ct);
        using GenerationResult ddim1Again = await Pipe.GenerateAsync(Castle with { Scheduler = ddim, Eta = 1 }, Ct);
        using GenerationResult euler0 = await Pipe.GenerateAsync(Castle with { Scheduler = euler }, Ct);
        using GenerationResult euler1 = await Pipe.GenerateAsync(Castle with { Scheduler = euler, Eta = 1 }, Ct);

        ResultAssert.Different(ddim0, ddim1, "DDIM eta 0 and 1");
        ResultAssert.Identical(ddim1, ddim1Again, "DDIM eta 1, same seed");
        ResultAssert.Identical(euler0, euler1, "Euler, which has no eta");
    }

    [Fact]
    public async Task Seed_IsTorchsCpuGenerator()
    {
        using GenerationResult seeded = await Pipe.GenerateAsync(Castle with { Seed = 42 }, Ct);
        using GenerationResult generated = await Pipe.GenerateAsync(Castle with { Seed = null, Generator = new TorchCpuGenerator(42) }, Ct);

        ResultAssert.Identical(seeded, generated, "Seed 42 and TorchCpuGenerator(42)");
        Assert.Equal(42UL, seeded.Seed);
        Assert.Null(generated.Seed);
    }

    [Fact]
    public async Task Generators_AreReproducible_DifferFromEachOther_AndAreConsumedByEachCall()
    {
        INoiseGenerator[] twice(Func<INoiseGenerator> make) => [make(), make()];
        var results = new List<GenerationResult>();
        try
        {
            foreach (INoiseGenerator[] pair in new[] { twice(() => new TorchCpuGenerator(42)), twice(() => new TorchCudaGenerator(42)), twice(() => new NumpyRandomState(42)) })
            {
                results.Add(await Pipe.GenerateAsync(Castle with { Seed = null, Generator = pair[0] }, Ct));
                results.Add(await Pipe.GenerateAsync(Castle with { Seed = null, Generator = pair[1] }, Ct));
            }

            var shared = new TorchCpuGenerator(42);
            using GenerationResult first = await Pipe.GenerateAsync(Castle with { Seed = null, Generator = shared }, Ct);
            using GenerationResult second = await Pipe.GenerateAsync(Castle with { Seed = null, Generator = shared }, Ct);

            for (int i = 0; i < 6; i += 2)
            {
                ResultAssert.Identical(results[i], results[i + 1], $"generator {i / 2}, twice");
            }

            ResultAssert.Different(results[0], results[2], "torch CPU and CUDA streams");
            ResultAssert.Different(results[0], results[4], "torch CPU and numpy streams");
            ResultAssert.Identical(results[0], first, "a fresh generator");
            ResultAssert.Different(first, second, "a generator's second call, which continues its stream");
        }
        finally
        {
            results.ForEach(r => r.Dispose());
        }
    }

    [Fact]
    public async Task NoSeed_ChoosesOne_AndReportsIt()
    {
        using GenerationResult random = await Pipe.GenerateAsync(Castle with { Seed = null }, Ct);
        using GenerationResult again = await Pipe.GenerateAsync(Castle with { Seed = random.Seed }, Ct);

        Assert.NotNull(random.Seed);
        ResultAssert.Identical(random, again, "the reported seed");
    }

    [Fact]
    public async Task Latents_GivenExplicitly_ReplaceTheSeededNoise()
    {
        using GenerationResult seeded = await Pipe.GenerateAsync(Castle with { Seed = 7 }, Ct);
        using GenerationResult explicitLatents = await Pipe.GenerateAsync(Castle with { Seed = null, Latents = Noise(seed: 7, 1, 4, 8, 8) }, Ct);
        using GenerationResult other = await Pipe.GenerateAsync(Castle with { Seed = 7, Latents = Noise(seed: 8, 1, 4, 8, 8) }, Ct);

        ResultAssert.Identical(seeded, explicitLatents, "seed 7 and the latents seed 7 draws");
        ResultAssert.Different(seeded, other, "the seed's latents and other latents");
    }

    [Fact]
    public async Task PromptEmbeds_TakenFromAResult_GiveTheSameImage()
    {
        using GenerationResult first = await Pipe.GenerateAsync(Castle with { NegativePrompt = "fog" }, Ct);
        float[] embeds = GenerationBytes.Flatten(first.PromptEmbeds);
        int half = embeds.Length / 2;

        using GenerationResult again = await Pipe.GenerateAsync(new TextToImageRequest(Tensor.Create(embeds[half..], [1, 77, 32]))
        {
            NegativePromptEmbeds = Tensor.Create(embeds[..half], [1, 77, 32]), Seed = 3, NumInferenceSteps = 4, Height = 64, Width = 64,
        }, Ct);
        using GenerationResult noNegative = await Pipe.GenerateAsync(new TextToImageRequest(Tensor.Create(embeds[half..], [1, 77, 32])) { Seed = 3, NumInferenceSteps = 4, Height = 64, Width = 64 }, Ct);
        using GenerationResult emptyNegative = await Pipe.GenerateAsync(Castle, Ct);

        ResultAssert.Identical(first, again, "prompt and negative prompt embeddings of the first result");
        // Without negative embeddings, the unconditional half is the empty prompt's, as with a text prompt.
        ResultAssert.Identical(emptyNegative, noNegative, "prompt embeddings alone");
    }

    [Fact]
    public async Task SchedulerPerRequest_IsClonedAndLeavesThePipelinesAlone()
    {
        string before = Pipe.Scheduler.Config.ClassName;
        IScheduler euler = SchedulerFactory.Create("Euler a", Pipe.Scheduler.Config);
        IScheduler expected = euler.Clone();
        expected.SetTimesteps(4);
        var seen = new List<float>();

        using GenerationResult result = await Pipe.GenerateAsync(Castle with { Scheduler = euler, OnStepEnd = s => seen.Add(s.Timestep) }, Ct);

        Assert.Equal(expected.Timesteps, seen);
        Assert.Equal(before, Pipe.Scheduler.Config.ClassName);
        Assert.Empty(euler.Timesteps);
    }

    [Fact]
    public async Task SchedulerSwap_ByUiName_AppliesToLaterCallsOfThatPipelineOnly()
    {
        using StableDiffusionPipeline own = StableDiffusionPipeline.FromPipe(Pipe);
        own.Scheduler = SchedulerFactory.Create("DPM++ 2M Karras", own.Scheduler.Config);

        using GenerationResult swapped = await own.GenerateAsync(Castle, Ct);
        using GenerationResult perRequest = await Pipe.GenerateAsync(Castle with { Scheduler = SchedulerFactory.Create("DPM++ 2M Karras", Pipe.Scheduler.Config) }, Ct);
        using GenerationResult shared = await Pipe.GenerateAsync(Castle, Ct);

        Assert.Equal("DPMSolverMultistepScheduler", own.Scheduler.Config.ClassName);
        Assert.Equal("PNDMScheduler", Pipe.Scheduler.Config.ClassName);
        ResultAssert.Identical(perRequest, swapped, "the swapped scheduler and the same one per request");
        ResultAssert.Different(shared, swapped, "PNDM and DPM++ 2M Karras");
    }

    [Fact]
    public async Task OnStepEnd_SeesEveryStepsLatents_AndChangesToThemAreUsed()
    {
        var shapes = new List<nint[]>();
        using GenerationResult plain = await Pipe.GenerateAsync(Castle with { OnStepEnd = s => shapes.Add(s.Latents.Lengths.ToArray()) }, Ct);
        TextToImageRequest dimmed = Castle with
        {
            OnStepEnd = s =>
            {
                if (s.StepIndex == 1)
                {
                    float[] latents = GenerationBytes.Flatten(s.Latents);
                    Tensor.Create(latents.Select(v => v * 0.5f).ToArray(), s.Latents.Lengths).CopyTo(s.Latents);
                }
            },
        };

        using GenerationResult changed = await Pipe.GenerateAsync(dimmed, Ct);
        using GenerationResult changedAgain = await Pipe.GenerateAsync(dimmed, Ct);

        Assert.Equal(plain.Timings.UNetCalls, shapes.Count);
        Assert.All(shapes, s => Assert.Equal([1, 4, 8, 8], s));
        ResultAssert.Different(plain, changed, "latents halved at step 1");
        ResultAssert.Identical(changed, changedAgain, "the same change twice");
    }

    [Fact]
    public async Task OnStepEnd_Interrupt_StopsAndDecodesTheLatentsOfThatStep()
    {
        float[]? atInterrupt = null;
        int calls = 0;

        using GenerationResult result = await Pipe.GenerateAsync(Castle with
        {
            NumInferenceSteps = 6,
            OnStepEnd = s =>
            {
                calls++;
                if (s.StepIndex == 1)
                {
                    atInterrupt = GenerationBytes.Flatten(s.Latents);
                    s.Interrupt = true;
                }
            },
        }, Ct);

        Assert.Equal(2, calls);
        Assert.Equal(2, result.Timings.UNetCalls);
        Assert.Equal(atInterrupt, GenerationBytes.Flatten(result.Latents));
    }

    [Fact]
    public async Task Progress_ReportsTheStagesInOrder_AndCountsTheSteps()
    {
        var reports = new List<GenerationProgress>();

        using GenerationResult result = await Pipe.GenerateAsync(Castle, new global::StableDiffusion.Hub.Tests.FakeHub.SynchronousProgress<GenerationProgress>(reports.Add), Ct);

        int steps = result.Timings.UNetCalls;
        GenerationStage[] expected =
        [
            GenerationStage.EncodingPrompt, .. Enumerable.Repeat(GenerationStage.Denoising, steps + 1), GenerationStage.Decoding, GenerationStage.SafetyChecking, GenerationStage.Completed,
        ];
        Assert.Equal(expected, reports.Select(r => r.Stage));
        Assert.Equal(Enumerable.Range(0, steps + 1), reports.Where(r => r.Stage == GenerationStage.Denoising).Select(r => r.Step));
        Assert.All(reports.Where(r => r.Stage == GenerationStage.Denoising), r => Assert.Equal(steps, r.TotalSteps));
        Assert.Equal(reports.Select(r => r.Elapsed).Order(), reports.Select(r => r.Elapsed));
    }

    [Fact]
    public async Task Timings_CoverEveryStage()
    {
        using GenerationResult result = await Pipe.GenerateAsync(Castle, Ct);
        GenerationTimings t = result.Timings;

        Assert.All(new[] { t.PromptEncoding, t.Denoising, t.UNet, t.Scheduler, t.Decoding, t.SafetyChecking }, s => Assert.True(s > TimeSpan.Zero));
        Assert.Equal(TimeSpan.Zero, t.ImageEncoding);
        Assert.Equal(5, t.UNetCalls);
        Assert.True(t.UNet + t.Scheduler <= t.Denoising, $"UNet {t.UNet} + scheduler {t.Scheduler} > denoising {t.Denoising}");
        Assert.True(t.PromptEncoding + t.Denoising + t.Decoding + t.SafetyChecking <= t.Total, $"stages exceed the total {t.Total}");
    }

    private static Tensor<float> Noise(ulong seed, params nint[] shape)
    {
        var values = new float[shape.Aggregate((nint)1, (a, b) => a * b)];
        new TorchCpuGenerator(seed).FillStandardNormal(values);
        return Tensor.Create(values, shape);
    }

    private static float[] Row(Tensor<float> embeds, int row)
    {
        float[] all = GenerationBytes.Flatten(embeds);
        int length = (int)(embeds.Lengths[1] * embeds.Lengths[2]);
        return all[(row * length)..((row + 1) * length)];
    }
}
