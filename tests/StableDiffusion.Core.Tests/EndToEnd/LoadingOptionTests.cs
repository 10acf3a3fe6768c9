using System.Collections.Concurrent;
using System.Numerics.Tensors;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.ML.OnnxRuntime;
using StableDiffusion.Core.Tests.EndToEnd.Support;
using StableDiffusion.Core.Tests.Hardening.Drills;
using StableDiffusion.Core.Tests.Pipelines;
using StableDiffusion.DependencyInjection;
using StableDiffusion.ExecutionProviders;
using StableDiffusion.Pipelines;
using StableDiffusion.Schedulers;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.EndToEnd;

/// <summary>How a pipeline is loaded and shared: the safety checker option, session settings per component, the session
/// options hook, <c>FromPipe</c> and dependency injection, through the public API.</summary>
[Trait("Area", "Pipeline")]
public sealed class LoadingOptionTests(TinyPipelines pipelines)
{
    private static readonly TextToImageRequest Castle = new("a castle on a hill") { Seed = 3, NumInferenceSteps = 4, Height = 64, Width = 64 };

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task SafetyCheckerOff_LogsAWarning_ReportsNoFlags_AndBlacksNothingOut()
    {
        Reference.Published.Require();
        using var logs = new FakeLoggerProvider();
        using var loggerFactory = LoggerFactory.Create(builder => builder.AddProvider(logs));
        using StableDiffusionPipeline withoutChecker = await StableDiffusionPipeline.FromPretrainedAsync(Fixtures.TinyModel,
            new StableDiffusionPipelineOptions { EnableSafetyChecker = false, LoggerFactory = loggerFactory }, Ct);
        TextToImageRequest flagged = FlaggedRequest.Create();

        using GenerationResult checkedResult = await pipelines.TextToImage.GenerateAsync(flagged, Ct);
        using GenerationResult uncheckedResult = await withoutChecker.GenerateAsync(flagged, Ct);
        using GenerationResult checkedCastle = await pipelines.TextToImage.GenerateAsync(Castle, Ct);
        using GenerationResult uncheckedCastle = await withoutChecker.GenerateAsync(Castle, Ct);

        FakeLogRecord warning = Assert.Single(logs.Collector.GetSnapshot(), r => r.Level == LogLevel.Warning);
        Assert.Contains("safety checker is disabled", warning.Message, StringComparison.Ordinal);
        Assert.Null(withoutChecker.SafetyChecker);
        Assert.Equal([true], checkedResult.NsfwContentDetected!);
        Assert.All(GenerationBytes.Flatten(checkedResult.ImageTensor), v => Assert.Equal(0f, v));
        Assert.Null(uncheckedResult.NsfwContentDetected);
        Assert.Contains(GenerationBytes.Flatten(uncheckedResult.ImageTensor), v => v > 0f);
        Assert.Equal([false], checkedCastle.NsfwContentDetected!);
        Assert.Equal(GenerationBytes.Flatten(checkedCastle.ImageTensor), GenerationBytes.Flatten(uncheckedCastle.ImageTensor));
    }

    [Fact]
    public async Task SessionSettings_ApplyPerComponent_AndTheHookSeesEachSessionsOptions()
    {
        var seen = new ConcurrentQueue<(string Component, int Threads, GraphOptimizationLevel Level)>();
        var options = new StableDiffusionPipelineOptions
        {
            Session = new SessionSettings { IntraOpNumThreads = 1 },
            ComponentSessions = new Dictionary<string, SessionSettings>
            {
                ["safety_checker"] = new() { IntraOpNumThreads = 2, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_BASIC },
            },
            ConfigureSessionOptions = (component, session) => seen.Enqueue((component, session.IntraOpNumThreads, session.GraphOptimizationLevel)),
        };
        Fixtures.Require();

        using StableDiffusionPipeline text = await StableDiffusionPipeline.FromPretrainedAsync(Fixtures.TinyModel, options, Ct);
        Assert.Equal(["safety_checker", "text_encoder", "unet", "vae_decoder"], seen.Select(s => s.Component).Order(StringComparer.Ordinal));
        using StableDiffusionImg2ImgPipeline edit = StableDiffusionImg2ImgPipeline.FromPipe(text);
        using (await edit.GenerateAsync(new Img2ImgRequest("a castle", TestImages.Picture()) { Seed = 1, NumInferenceSteps = 2 }, Ct))
        {
        }

        using GenerationResult result = await text.GenerateAsync(Castle, Ct);
        using GenerationResult defaults = await pipelines.TextToImage.GenerateAsync(Castle, Ct);

        // The VAE encoder loads on the first image-to-image call, with the shared settings.
        Assert.Contains(seen, s => s.Component == "vae_encoder" && s.Threads == 1);
        Assert.All(seen.Where(s => s.Component != "safety_checker"), s => Assert.Equal((1, GraphOptimizationLevel.ORT_ENABLE_ALL), (s.Threads, s.Level)));
        Assert.Equal((2, GraphOptimizationLevel.ORT_ENABLE_BASIC), seen.Where(s => s.Component == "safety_checker").Select(s => (s.Threads, s.Level)).Single());
        ResultAssert.Close(defaults, result, 1e-5, "one intra-op thread and the defaults");
    }

    [Fact]
    public async Task UnavailableExecutionProvider_FailsNamingThePackageToAdd()
    {
        Fixtures.Require();
        var options = new StableDiffusionPipelineOptions { Session = new SessionSettings { ExecutionProvider = ExecutionProvider.Cuda() } };

        var error = await Assert.ThrowsAsync<ExecutionProviderException>(() => StableDiffusionPipeline.FromPretrainedAsync(Fixtures.TinyModel, options, Ct));

        Assert.Contains("Microsoft.ML.OnnxRuntime.Gpu", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public async Task FromPipe_SharesTheSessions_InAnyDisposalOrder(int disposedFirst)
    {
        Fixtures.Require();
        var text = await StableDiffusionPipeline.FromPretrainedAsync(Fixtures.TinyModel, cancellationToken: Ct);
        var edit = StableDiffusionImg2ImgPipeline.FromPipe(text);
        var inpaint = StableDiffusionInpaintPipeline.FromPipe(edit);
        DiffusionPipeline[] family = [text, edit, inpaint];
        var picture = TestImages.Picture();
        var mask = TestImages.Mask();
        using GenerationResult expected = await pipelines.TextToImage.GenerateAsync(Castle, Ct);

        Assert.Same(text.UNet, edit.UNet);
        Assert.Same(text.UNet, inpaint.UNet);
        family[disposedFirst].Dispose();
        foreach (DiffusionPipeline alive in family.Where((_, i) => i != disposedFirst))
        {
            using GenerationResult result = alive switch
            {
                StableDiffusionPipeline t => await t.GenerateAsync(Castle, Ct),
                StableDiffusionImg2ImgPipeline e => await e.GenerateAsync(new Img2ImgRequest("a castle", picture) { Seed = 1, NumInferenceSteps = 2 }, Ct),
                StableDiffusionInpaintPipeline i => await i.GenerateAsync(new InpaintRequest("a castle", picture, mask) { Seed = 1, NumInferenceSteps = 2, Height = 64, Width = 64 }, Ct),
                _ => throw new InvalidOperationException(),
            };
            if (alive is StableDiffusionPipeline)
            {
                ResultAssert.Identical(expected, result, "text-to-image on shared sessions");
            }
        }

        foreach (DiffusionPipeline pipeline in family)
        {
            pipeline.Dispose();
        }

        Assert.Throws<ObjectDisposedException>(() => text.UNet.Predict(
            Tensor.CreateFromShape<float>([1, 4, 8, 8]), 1f, Tensor.CreateFromShape<float>([1, 77, 32]), Tensor.CreateFromShape<float>([1, 4, 8, 8])));
    }

    [Fact]
    public void FromPipe_StartsWithTheSourcesScheduler_AndSwapsIndependently()
    {
        using StableDiffusionPipeline text = StableDiffusionPipeline.FromPipe(pipelines.TextToImage);
        text.Scheduler = SchedulerFactory.Create("Euler a", text.Scheduler.Config);

        using StableDiffusionImg2ImgPipeline edit = StableDiffusionImg2ImgPipeline.FromPipe(text);
        edit.Scheduler = SchedulerFactory.Create("DDIM", edit.Scheduler.Config);
        using StableDiffusionInpaintPipeline inpaint = StableDiffusionInpaintPipeline.FromPipe(text);

        Assert.Equal("EulerAncestralDiscreteScheduler", text.Scheduler.Config.ClassName);
        Assert.Equal("EulerAncestralDiscreteScheduler", inpaint.Scheduler.Config.ClassName);
        Assert.Equal("DDIMScheduler", edit.Scheduler.Config.ClassName);
    }

    [Fact]
    public async Task AddStableDiffusion_RegistersALazySingleton_BoundFromConfiguration_DisposedWithTheContainer()
    {
        Fixtures.Require();
        IConfiguration configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["StableDiffusion:Model"] = Fixtures.TinyModel,
            ["StableDiffusion:Pipeline:EnableSafetyChecker"] = "false",
            ["StableDiffusion:Pipeline:Session:IntraOpNumThreads"] = "1",
        }).Build();
        var services = new ServiceCollection().AddLogging().AddStableDiffusion().Services;
        services.Configure<StableDiffusionOptions>(configuration.GetSection("StableDiffusion"));
        StableDiffusionPipeline pipeline;
        StableDiffusionPipelineProvider provider;
        using (ServiceProvider container = services.BuildServiceProvider())
        {
            provider = container.GetRequiredService<StableDiffusionPipelineProvider>();
            pipeline = await provider.GetPipelineAsync(Ct);
            Assert.Same(pipeline, container.GetRequiredService<StableDiffusionPipeline>());
            Assert.Null(pipeline.SafetyChecker);
            Assert.Equal(Fixtures.TinyModel, pipeline.ModelPath);

            using GenerationResult viaContainer = await pipeline.GenerateAsync(Castle, Ct);
            using GenerationResult direct = await pipelines.TextToImage.GenerateAsync(Castle, Ct);
            Assert.Equal(GenerationBytes.Flatten(direct.ImageTensor), GenerationBytes.Flatten(viaContainer.ImageTensor));
        }

        Assert.Throws<ObjectDisposedException>(() => pipeline.Generate(Castle, cancellationToken: Ct));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => provider.GetPipelineAsync(Ct));
    }
}
