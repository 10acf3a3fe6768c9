using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using StableDiffusion.DependencyInjection;
using StableDiffusion.ExecutionProviders;
using StableDiffusion.Models;
using StableDiffusion.Pipelines;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.WebApi.Tests;

/// <summary><c>AddStableDiffusion</c> and its options, as a host uses them.</summary>
[Trait("Area", "DependencyInjection")]
public sealed class DependencyInjectionTests
{
    [Fact]
    public void Options_BindFromConfiguration()
    {
        IConfiguration configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["StableDiffusion:Model"] = "/models/sd15",
            ["StableDiffusion:Pipeline:EnableSafetyChecker"] = "false",
            ["StableDiffusion:Pipeline:Revision"] = "fp16",
            ["StableDiffusion:Pipeline:Session:ExecutionProvider:Name"] = "CUDA",
            ["StableDiffusion:Pipeline:Session:ExecutionProvider:DeviceId"] = "1",
            ["StableDiffusion:Pipeline:Session:ExecutionProvider:Options:cudnn_conv_algo_search"] = "HEURISTIC",
            ["StableDiffusion:Pipeline:Session:IntraOpNumThreads"] = "4",
            ["StableDiffusion:Pipeline:Session:FreeDimensionOverrides:batch"] = "2",
            ["StableDiffusion:Pipeline:ComponentSessions:safety_checker:IntraOpNumThreads"] = "1",
            ["StableDiffusion:Pipeline:Hub:Offline"] = "true",
        }).Build();
        using ServiceProvider services = new ServiceCollection()
            .AddStableDiffusion(FreshProvider).Services
            .Configure<StableDiffusionOptions>(configuration.GetSection("StableDiffusion"))
            .BuildServiceProvider();

        StableDiffusionOptions options = services.GetRequiredService<IOptions<StableDiffusionOptions>>().Value;

        Assert.Equal("/models/sd15", options.Model);
        StableDiffusionPipelineOptions pipeline = options.Pipeline;
        Assert.False(pipeline.EnableSafetyChecker);
        Assert.Equal("fp16", pipeline.Revision);
        Assert.Equal(("CUDA", 1), (pipeline.Session.ExecutionProvider.Name, pipeline.Session.ExecutionProvider.DeviceId));
        Assert.Equal("HEURISTIC", pipeline.Session.ExecutionProvider.Options["cudnn_conv_algo_search"]);
        Assert.Equal(4, pipeline.Session.IntraOpNumThreads);
        Assert.Equal(2, pipeline.Session.FreeDimensionOverrides["batch"]);
        Assert.Equal(1, pipeline.SessionFor("safety_checker").IntraOpNumThreads);
        Assert.Equal(4, pipeline.SessionFor("unet").IntraOpNumThreads);
        Assert.True(pipeline.Hub!.Offline);
        Assert.Equal(("CPU", 0), (ExecutionProvider.Cpu.Name, ExecutionProvider.Cpu.DeviceId));
    }

    // The configuration binder writes into the instances it finds: provider defaults must not be shared between settings.
    [Fact]
    public void PerComponentProviders_BindFromConfiguration()
    {
        IConfiguration configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["StableDiffusion:Pipeline:Session:ExecutionProvider:Name"] = "CUDA",
            ["StableDiffusion:Pipeline:ComponentSessions:safety_checker:ExecutionProvider:Name"] = "CPU",
        }).Build();
        using ServiceProvider services = new ServiceCollection()
            .AddStableDiffusion().Services
            .Configure<StableDiffusionOptions>(configuration.GetSection("StableDiffusion"))
            .BuildServiceProvider();

        StableDiffusionPipelineOptions pipeline = services.GetRequiredService<IOptions<StableDiffusionOptions>>().Value.Pipeline;

        Assert.Equal("CUDA", pipeline.SessionFor("unet").ExecutionProvider.Name);
        Assert.Equal("CPU", pipeline.SessionFor("safety_checker").ExecutionProvider.Name);
        Assert.Equal("CPU", ExecutionProvider.Cpu.Name);
    }

    private static void FreshProvider(StableDiffusionOptions options) =>
        options.Pipeline = options.Pipeline with { Session = new SessionSettings { ExecutionProvider = new ExecutionProvider() } };

    [Fact]
    public void TheSamplesAppSettings_Bind()
    {
        string path = Path.Combine(Fixtures.RepositoryRoot, "samples", "StableDiffusion.WebApi", "appsettings.json");
        IConfiguration configuration = new ConfigurationBuilder().AddJsonFile(path).Build();
        using ServiceProvider services = new ServiceCollection()
            .AddStableDiffusion().Services
            .Configure<StableDiffusionOptions>(configuration.GetSection("StableDiffusion"))
            .Configure<ImageApiOptions>(configuration.GetSection(ImageApiOptions.SectionName))
            .BuildServiceProvider();

        StableDiffusionOptions options = services.GetRequiredService<IOptions<StableDiffusionOptions>>().Value;
        ImageApiOptions limits = services.GetRequiredService<IOptions<ImageApiOptions>>().Value;

        Assert.Equal(Pipelines.DiffusionPipeline.DefaultModelId, options.Model);
        Assert.True(options.Pipeline.EnableSafetyChecker);
        Assert.Equal("CPU", options.Pipeline.Session.ExecutionProvider.Name);
        Assert.Equal((true, 1, 150, 1024), (limits.PreloadModel, limits.MaxConcurrentGenerations, limits.MaxSteps, limits.MaxSize));
        Assert.Equal("http://127.0.0.1:5080", configuration["Urls"]);
    }

    [Fact]
    public async Task ThePipeline_IsALazilyLoadedSingleton()
    {
        Fixtures.Require();
        var logs = new FakeLogCollector();
        await using ServiceProvider services = new ServiceCollection()
            .AddLogging(logging => logging.AddProvider(new FakeLoggerProvider(logs)))
            .AddStableDiffusion(o => o.Model = Fixtures.TinyModel).Services
            .BuildServiceProvider();

        var provider = services.GetRequiredService<StableDiffusionPipelineProvider>();
        Assert.Same(provider, services.GetRequiredService<StableDiffusionPipelineProvider>());
        Assert.DoesNotContain(logs.GetSnapshot(), r => r.Message.StartsWith("Loaded ", StringComparison.Ordinal)); // nothing loaded yet

        // Many callers at once share one load.
        StableDiffusionPipeline[] loaded = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => provider.GetPipelineAsync(TestContext.Current.CancellationToken))));
        StableDiffusionPipeline resolved = services.GetRequiredService<StableDiffusionPipeline>();

        Assert.All(loaded, p => Assert.Same(loaded[0], p));
        Assert.Same(loaded[0], resolved);
        Assert.Same(resolved, services.GetRequiredService<StableDiffusionPipeline>());
        Assert.Single(logs.GetSnapshot(), r => r.Message.StartsWith("Loaded ", StringComparison.Ordinal));
        Assert.Equal(Path.GetFullPath(Fixtures.TinyModel), resolved.ModelPath);
    }

    [Fact]
    public async Task SeveralModels_ByKey_EachWithEditingPipelinesSharingItsSessions_AndAnImageGenerator()
    {
        Fixtures.Require();
        await using ServiceProvider services = new ServiceCollection()
            .AddKeyedStableDiffusion("plain", o => o.Model = Fixtures.TinyModel).AddImageGenerator().Services
            .AddKeyedStableDiffusion("variants", o => o.Model = Fixtures.TinyVariantsModel).AddImageGenerator().Services
            .BuildServiceProvider();

        StableDiffusionPipeline plain = services.GetRequiredKeyedService<StableDiffusionPipeline>("plain");
        StableDiffusionPipeline variants = services.GetRequiredKeyedService<StableDiffusionPipeline>("variants");
        StableDiffusionImg2ImgPipeline img2img = services.GetRequiredKeyedService<StableDiffusionImg2ImgPipeline>("plain");
        StableDiffusionInpaintPipeline inpaint = services.GetRequiredKeyedService<StableDiffusionInpaintPipeline>("variants");

        Assert.Equal((Path.GetFullPath(Fixtures.TinyModel), Path.GetFullPath(Fixtures.TinyVariantsModel)), (plain.ModelPath, variants.ModelPath));
        Assert.Same(plain.UNet, img2img.UNet);
        Assert.Same(variants.UNet, inpaint.UNet);
        Assert.Null(services.GetService<StableDiffusionPipeline>());

#pragma warning disable MEAI001 // IImageGenerator is experimental in Microsoft.Extensions.AI.Abstractions 10.x.
        IImageGenerator generator = services.GetRequiredKeyedService<IImageGenerator>("variants");
        Assert.Equal(Fixtures.TinyVariantsModel, generator.GetService<ImageGeneratorMetadata>()!.DefaultModelId);
        ImageGenerationResponse response = await generator.GenerateImagesAsync("a cat",
            new ImageGenerationOptions { ImageSize = new System.Drawing.Size(32, 32), AdditionalProperties = new() { ["seed"] = 1, ["num_inference_steps"] = 2 } },
            TestContext.Current.CancellationToken);
#pragma warning restore MEAI001
        Assert.Equal("image/png", Assert.IsType<DataContent>(Assert.Single(response.Contents)).MediaType);
    }

    [Fact]
    public async Task DisposingTheContainer_DisposesThePipeline()
    {
        Fixtures.Require();
        StableDiffusionPipeline pipe;
        await using (ServiceProvider services = new ServiceCollection().AddStableDiffusion(o => o.Model = Fixtures.TinyModel).Services.BuildServiceProvider())
        {
            pipe = await services.GetRequiredService<StableDiffusionPipelineProvider>().GetPipelineAsync(TestContext.Current.CancellationToken);
        }

        await Assert.ThrowsAsync<ObjectDisposedException>(() => pipe.GenerateAsync(new TextToImageRequest("a cat"), TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task TheContainersLoggerFactory_ReceivesThePipelinesLogs()
    {
        Fixtures.Require();
        var logs = new FakeLogCollector();
        await using ServiceProvider services = new ServiceCollection()
            .AddLogging(logging => logging.AddProvider(new FakeLoggerProvider(logs)))
            .AddStableDiffusion(o =>
            {
                o.Model = Fixtures.TinyModel;
                o.Pipeline = o.Pipeline with { EnableSafetyChecker = false };
            }).Services
            .BuildServiceProvider();

        await services.GetRequiredService<StableDiffusionPipelineProvider>().GetPipelineAsync(TestContext.Current.CancellationToken);

        FakeLogRecord warning = Assert.Single(logs.GetSnapshot(), r => r.Level == LogLevel.Warning);
        Assert.StartsWith("The safety checker is disabled", warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AMissingModelFolder_GivesAClearError_AndIsTriedAgain()
    {
        string missing = Path.Combine(Path.GetTempPath(), $"no-such-model-{Guid.NewGuid():N}");
        await using ServiceProvider services = new ServiceCollection().AddStableDiffusion(o => o.Model = missing).Services.BuildServiceProvider();
        var provider = services.GetRequiredService<StableDiffusionPipelineProvider>();

        ModelLoadException first = await Assert.ThrowsAsync<ModelLoadException>(() => provider.GetPipelineAsync(TestContext.Current.CancellationToken));
        ModelLoadException second = await Assert.ThrowsAsync<ModelLoadException>(() => provider.GetPipelineAsync(TestContext.Current.CancellationToken));

        Assert.Equal($"The model folder '{missing}' does not exist. Pass a folder in the diffusers ONNX layout, or a Hugging Face repository id such as '{Pipelines.DiffusionPipeline.DefaultModelId}'.", first.Message);
        Assert.NotSame(first, second); // a failed load is not cached
        Assert.Throws<ModelLoadException>(() => services.GetRequiredService<StableDiffusionPipeline>());
    }

    [Fact]
    public async Task AnEmptyModel_SaysWhereToSetIt()
    {
        await using ServiceProvider services = new ServiceCollection().AddStableDiffusion(o => o.Model = " ").Services.BuildServiceProvider();

        InvalidOperationException ex = await Assert.ThrowsAsync<InvalidOperationException>(
            () => services.GetRequiredService<StableDiffusionPipelineProvider>().GetPipelineAsync(TestContext.Current.CancellationToken));

        Assert.Contains("No model is configured: set StableDiffusionOptions.Model", ex.Message, StringComparison.Ordinal);
        Assert.Contains("\"StableDiffusion\" configuration section", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AFolderThatIsNotAModel_SaysWhatIsMissing()
    {
        string folder = Directory.CreateTempSubdirectory("not-a-model-").FullName;
        try
        {
            await using ServiceProvider services = new ServiceCollection().AddStableDiffusion(o => o.Model = folder).Services.BuildServiceProvider();

            ModelLoadException ex = await Assert.ThrowsAsync<ModelLoadException>(
                () => services.GetRequiredService<StableDiffusionPipelineProvider>().GetPipelineAsync(TestContext.Current.CancellationToken));

            Assert.StartsWith($"'{Path.Combine(folder, "model_index.json")}' does not exist", ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
