using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using SkiaSharp;
using StableDiffusion.DependencyInjection;
using StableDiffusion.Imaging;
using StableDiffusion.Models;
using StableDiffusion.Pipelines;
using StableDiffusion.Schedulers;
using StableDiffusion.SkiaSharp;

namespace StableDiffusion.WebApi;

/// <summary>
/// The application: registers Stable Diffusion with <c>AddStableDiffusion</c>, binds it from the "StableDiffusion"
/// configuration section, and maps <c>POST /images</c>.
/// </summary>
internal static partial class ImageApi
{
    /// <summary>Response header with the seed that made the image (random when the request gave none).</summary>
    public const string SeedHeader = "X-Seed";

    /// <summary>Response header saying whether the safety checker flagged the image (then black); absent when the checker is off.</summary>
    public const string NsfwHeader = "X-Nsfw-Content-Detected";

    /// <summary>Builds the application from the command line (<c>--urls http://127.0.0.1:5080</c>), appsettings.json and
    /// the environment; <paramref name="configure"/> lets tests add configuration or logging before the services are built.</summary>
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        WebApplicationBuilder builder = WebApplication.CreateBuilder(args);
        configure?.Invoke(builder);

        // The pipeline is a lazily loaded singleton, shared by all requests (it is safe to call from several threads).
        builder.Services.AddStableDiffusion();
        builder.Services.Configure<StableDiffusionOptions>(builder.Configuration.GetSection("StableDiffusion"));
        builder.Services.Configure<ImageApiOptions>(builder.Configuration.GetSection(ImageApiOptions.SectionName));
        builder.Services.AddSingleton<GenerationSlots>();
        builder.Services.AddHostedService<ModelPreloader>();
        builder.Services.AddProblemDetails();

        WebApplication app = builder.Build();
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.MapPost("/images", GenerateAsync);
        return app;
    }

    /// <summary>Generates one image. The token is the request's (<c>HttpContext.RequestAborted</c>): when the client
    /// disconnects, the generation stops within one model call.</summary>
    internal static async Task<Results<FileContentHttpResult, ValidationProblem, ProblemHttpResult, EmptyHttpResult>> GenerateAsync(
        HttpContext http, StableDiffusionPipelineProvider pipelines, GenerationSlots slots, IOptions<ImageApiOptions> limits,
        ILogger<ImageRequest> logger, CancellationToken cancellationToken)
    {
        // The body is read here rather than bound, so that malformed JSON gets a 400 that says what is wrong with it.
        ImageRequest? request;
        try
        {
            request = await http.Request.ReadFromJsonAsync<ImageRequest>(cancellationToken).ConfigureAwait(false);
        }
        catch (JsonException ex)
        {
            return TypedResults.Problem($"The body is not a valid image request: {ex.Message}", statusCode: StatusCodes.Status400BadRequest, title: "Malformed JSON.");
        }
        catch (InvalidOperationException) when (!http.Request.HasJsonContentType())
        {
            return TypedResults.Problem("Send the request as JSON (Content-Type: application/json), e.g. {\"prompt\": \"a photo of an astronaut\"}.",
                statusCode: StatusCodes.Status415UnsupportedMediaType, title: "Unsupported media type.");
        }

        if (request is null)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["prompt"] = ["A prompt is required."] });
        }

        Dictionary<string, string[]> errors = request.Validate(limits.Value);
        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        // The image is decoded before the model is asked for, with its size checked on the header before any pixel is decoded.
        RgbImage? initImage = null;
        if (request.InitImage is { } encoded)
        {
            try
            {
                initImage = SkiaImageCodec.Decode(new MemoryStream(Convert.FromBase64String(encoded)),
                    new ImageDecodeLimits { MaxWidth = limits.Value.MaxSize, MaxHeight = limits.Value.MaxSize, MaxPixels = (long)limits.Value.MaxSize * limits.Value.MaxSize });
            }
            catch (Exception ex) when (ex is FormatException or InvalidDataException or ArgumentException)
            {
                string problem = ex is FormatException ? "It is not valid base64." : ex.Message;
                return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["initImage"] = [$"The image cannot be used: {problem}"] });
            }
        }

        StableDiffusionPipeline pipe;
        try
        {
            pipe = await pipelines.GetPipelineAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is ModelLoadException or Hub.HubException or ExecutionProviders.ExecutionProviderException or InvalidOperationException)
        {
            LogModelUnavailable(logger, ex);
            return TypedResults.Problem(ex.Message, statusCode: StatusCodes.Status503ServiceUnavailable, title: "The model could not be loaded.");
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return TypedResults.Empty;
        }

        try
        {
            IScheduler? scheduler = request.Scheduler is { } name ? SchedulerFactory.Create(name, pipe.Scheduler.Config) : null;
            using IDisposable slot = await slots.EnterAsync(cancellationToken).ConfigureAwait(false);

            long start = Stopwatch.GetTimestamp();
            int steps = request.Steps ?? 50;
            LogGenerating(logger, request.Prompt!, steps, request.SeedValue);
            using GenerationResult result = initImage is null
                ? await pipe.GenerateAsync(new TextToImageRequest(request.Prompt!)
                {
                    NegativePrompt = request.NegativePrompt,
                    NumInferenceSteps = steps,
                    GuidanceScale = request.Guidance ?? 7.5f,
                    Seed = request.SeedValue,
                    Width = request.Width,
                    Height = request.Height,
                    Scheduler = scheduler,
                }, cancellationToken).ConfigureAwait(false)
                : await ChangeImageAsync(pipe, request, initImage, steps, scheduler, cancellationToken).ConfigureAwait(false);

            bool? flagged = result.NsfwContentDetected?[0];
            LogGenerated(logger, result.Seed ?? 0, Stopwatch.GetElapsedTime(start).TotalSeconds, flagged == true);
            http.Response.Headers[SeedHeader] = result.Seed?.ToString(CultureInfo.InvariantCulture);
            if (flagged is bool nsfw)
            {
                http.Response.Headers[NsfwHeader] = nsfw ? "true" : "false";
            }

            // PNG carries the settings in its parameters chunk, as web UIs write it; JPEG and WebP carry the pixels only.
            (string mediaType, SKEncodedImageFormat? encoder) = ImageRequest.Formats[request.Format ?? "png"];
            byte[] body = encoder is { } format ? SkiaImageCodec.Encode(result.Images[0], format) : result.ToPng();
            return TypedResults.File(body, mediaType);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Nobody is listening any more: nothing to send.
            LogCancelled(logger, request.Prompt!);
            return TypedResults.Empty;
        }
        catch (Exception ex) when (ex is ArgumentException or SchedulerConfigException)
        {
            // The pipeline's own checks (a scheduler name, more steps than the model has timesteps): the message says what to change.
            return TypedResults.Problem(ex.Message, statusCode: StatusCodes.Status400BadRequest, title: "The request cannot be run.");
        }
    }

    private static async Task<GenerationResult> ChangeImageAsync(StableDiffusionPipeline pipe, ImageRequest request, RgbImage image, int steps,
        IScheduler? scheduler, CancellationToken cancellationToken)
    {
        // An image-to-image pipeline over the same loaded sessions costs nothing to make; disposing it releases only its hold.
        using var img2img = StableDiffusionImg2ImgPipeline.FromPipe(pipe);
        return await img2img.GenerateAsync(new Img2ImgRequest(request.Prompt!, image)
        {
            NegativePrompt = request.NegativePrompt,
            NumInferenceSteps = steps,
            GuidanceScale = request.Guidance ?? 7.5f,
            Seed = request.SeedValue,
            Strength = request.Strength ?? 0.8,
            Scheduler = scheduler,
        }, cancellationToken).ConfigureAwait(false);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Generating \"{Prompt}\" ({Steps} steps, seed {Seed})")]
    private static partial void LogGenerating(ILogger logger, string prompt, int steps, ulong? seed);

    [LoggerMessage(Level = LogLevel.Information, Message = "Generated seed {Seed} in {Seconds:0.00} s (flagged: {Flagged})")]
    private static partial void LogGenerated(ILogger logger, ulong seed, double seconds, bool flagged);

    [LoggerMessage(Level = LogLevel.Information, Message = "The client disconnected: the generation of \"{Prompt}\" was cancelled")]
    private static partial void LogCancelled(ILogger logger, string prompt);

    [LoggerMessage(Level = LogLevel.Error, Message = "The model could not be loaded")]
    private static partial void LogModelUnavailable(ILogger logger, Exception exception);
}

/// <summary>Admits at most <see cref="ImageApiOptions.MaxConcurrentGenerations"/> generations at once.</summary>
internal sealed class GenerationSlots(IOptions<ImageApiOptions> options) : IDisposable
{
    private readonly SemaphoreSlim _slots = new(Math.Max(1, options.Value.MaxConcurrentGenerations));

    public async Task<IDisposable> EnterAsync(CancellationToken cancellationToken)
    {
        await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
        return new Slot(_slots);
    }

    public void Dispose() => _slots.Dispose();

    private sealed class Slot(SemaphoreSlim slots) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                slots.Release();
            }
        }
    }
}

/// <summary>Loads the model in the background as the host starts (when <see cref="ImageApiOptions.PreloadModel"/> is on),
/// logging how long it took or why it failed; a failed load is tried again by the next request.</summary>
internal sealed partial class ModelPreloader(StableDiffusionPipelineProvider pipelines, IOptions<ImageApiOptions> options, ILogger<ModelPreloader> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Value.PreloadModel)
        {
            return;
        }

        long start = Stopwatch.GetTimestamp();
        try
        {
            StableDiffusionPipeline pipe = await pipelines.GetPipelineAsync(stoppingToken).ConfigureAwait(false);
            LogLoaded(logger, pipe.ModelPath, Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogFailed(logger, ex);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Model {ModelPath} loaded in {Seconds:0.0} s")]
    private static partial void LogLoaded(ILogger logger, string modelPath, double seconds);

    [LoggerMessage(Level = LogLevel.Error, Message = "The model could not be loaded; requests will try again")]
    private static partial void LogFailed(ILogger logger, Exception exception);
}
