using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Microsoft.OpenApi;
using Scalar.AspNetCore;
using SkiaSharp;
using StableDiffusion.DependencyInjection;
using StableDiffusion.ImageGeneration;
using StableDiffusion.Memory;
using StableDiffusion.Models;
using StableDiffusion.Pipelines;
using StableDiffusion.Previews;
using StableDiffusion.Schedulers;
using StableDiffusion.SkiaSharp;

namespace StableDiffusion.WebApi;

/// <summary>
/// The application: registers Stable Diffusion with <c>AddStableDiffusion</c>, binds it from the "StableDiffusion"
/// configuration section, and maps the image endpoints, health checks, the OpenAPI document with its browsable reference,
/// and the page at <c>/</c>.
/// </summary>
internal static partial class ImageApi
{
    /// <summary>Response header with the seed that made the image (random when the request gave none).</summary>
    public const string SeedHeader = "X-Seed";

    /// <summary>Response header saying whether the safety checker flagged the image (then black); absent when the checker is off.</summary>
    public const string NsfwHeader = "X-Nsfw-Content-Detected";

    private static readonly JsonSerializerOptions EventJson = new(JsonSerializerDefaults.Web);

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
        ImageApiOptions limits = builder.Configuration.GetSection(ImageApiOptions.SectionName).Get<ImageApiOptions>() ?? new();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Limits.MaxRequestBodySize = limits.MaxRequestBodyBytes);
        builder.Services.AddSingleton(services =>
        {
            ImageApiOptions options = services.GetRequiredService<IOptions<ImageApiOptions>>().Value;
            return new GenerationQueue(Math.Max(1, options.MaxConcurrentGenerations), Math.Max(0, options.MaxQueueLength));
        });
        builder.Services.AddSingleton<LatentPreview>(services =>
            services.GetRequiredService<IOptions<ImageApiOptions>>().Value.TinyAutoencoder is { Length: > 0 } folder
                ? TinyAutoencoderPreview.FromPretrained(folder)
                : LatentRgbPreview.StableDiffusion1);
        builder.Services.AddSingleton<ImageRunner>();
        builder.Services.AddHostedService<ModelPreloader>();
        builder.Services.AddProblemDetails();
        builder.Services.AddHealthChecks().AddCheck<ModelLoadedCheck>("model", tags: ["ready"]);
        builder.Services.AddOpenApi();

        WebApplication app = builder.Build();
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseDefaultFiles();
        app.UseStaticFiles();
        app.MapOpenApi();
        app.MapScalarApiReference();
        app.MapHealthChecks("/health/live", new() { Predicate = _ => false });
        app.MapHealthChecks("/health/ready", new() { Predicate = check => check.Tags.Contains("ready") });

        app.MapPost("/images", GenerateAsync)
            .WithSummary("Generates an image from a prompt (or changes initImage), returning it as PNG, JPEG or WebP.")
            .DocumentsBody<ImageRequest>("application/json")
            .Produces(StatusCodes.Status200OK, contentType: "image/png")
            .ProducesServiceProblems();
        app.MapPost("/images/edit", EditAsync)
            .WithSummary("Changes an image (multipart: image, optional mask for inpainting, prompt, strength and the other settings).")
            .DocumentsBody<EditForm>("multipart/form-data")
            .Produces(StatusCodes.Status200OK, contentType: "image/png")
            .ProducesServiceProblems();
        app.MapPost("/images/stream", StreamAsync)
            .WithSummary("Generates an image, streaming Server-Sent Events: 'progress' (stage, step, preview PNG as base64), then 'image' (the PNG as base64) or 'error'.")
            .DocumentsBody<ImageRequest>("application/json")
            .Produces(StatusCodes.Status200OK, contentType: "text/event-stream")
            .ProducesServiceProblems();
        return app;
    }

    /// <summary><c>POST /images</c>: one image for a JSON request. The token is the request's (<c>HttpContext.RequestAborted</c>):
    /// when the client disconnects, the generation stops within one model call.</summary>
    internal static async Task<IResult> GenerateAsync(HttpContext http, ImageRunner runner, IOptions<ImageApiOptions> limits, CancellationToken cancellationToken)
    {
        (ImageJob? job, IResult? problem) = await RequestReader.ReadJsonAsync(http.Request, limits.Value, cancellationToken).ConfigureAwait(false);
        return problem ?? await runner.RespondWithImageAsync(http, job!, cancellationToken).ConfigureAwait(false);
    }

    /// <summary><c>POST /images/edit</c>: image-to-image, or inpainting when a mask is sent.</summary>
    internal static async Task<IResult> EditAsync(HttpContext http, ImageRunner runner, IOptions<ImageApiOptions> limits, CancellationToken cancellationToken)
    {
        (ImageJob? job, IResult? problem) = await RequestReader.ReadFormAsync(http.Request, limits.Value, cancellationToken).ConfigureAwait(false);
        return problem ?? await runner.RespondWithImageAsync(http, job!, cancellationToken).ConfigureAwait(false);
    }

    /// <summary><c>POST /images/stream</c>: Server-Sent Events with the progress and previews, then the image.</summary>
    internal static async Task<IResult> StreamAsync(HttpContext http, ImageRunner runner, IOptions<ImageApiOptions> limits, CancellationToken cancellationToken)
    {
        (ImageJob? job, IResult? problem) = await RequestReader.ReadJsonAsync(http.Request, limits.Value, cancellationToken).ConfigureAwait(false);
        return problem ?? await runner.StreamAsync(http, job!, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The problems every image endpoint may answer with, in the OpenAPI document.</summary>
    private static RouteHandlerBuilder ProducesServiceProblems(this RouteHandlerBuilder endpoint) => endpoint
        .ProducesValidationProblem()
        .ProducesProblem(StatusCodes.Status413PayloadTooLarge).ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
        .ProducesProblem(StatusCodes.Status422UnprocessableEntity).ProducesProblem(StatusCodes.Status429TooManyRequests)
        .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

    /// <summary>
    /// Describes the request body in the OpenAPI document. The handlers read their bodies themselves (to name unknown fields,
    /// and to say what to send on 415), so the body is not declared with <c>Accepts</c>, whose content-type routing would
    /// answer 415 before the handler with no explanation.
    /// </summary>
    private static RouteHandlerBuilder DocumentsBody<T>(this RouteHandlerBuilder endpoint, string contentType) =>
        endpoint.AddOpenApiOperationTransformer(async (operation, context, cancellationToken) =>
        {
            OpenApiSchema schema = await context.GetOrCreateSchemaAsync(typeof(T), null, cancellationToken).ConfigureAwait(false);
            operation.RequestBody = new OpenApiRequestBody
            {
                Required = true,
                Content = new Dictionary<string, OpenApiMediaType> { [contentType] = new OpenApiMediaType { Schema = schema } },
            };
        });

    /// <summary>The form of <c>POST /images/edit</c>, for the OpenAPI document.</summary>
    internal sealed record EditForm(IFormFile Image, IFormFile? Mask, string Prompt, string? NegativePrompt, int? Steps, float? Guidance, long? Seed,
        string? Scheduler, double? Strength, string? Format);

    /// <summary>One server-sent event's JSON.</summary>
    internal static byte[] Event(string name, object data) =>
        System.Text.Encoding.UTF8.GetBytes($"event: {name}\ndata: {JsonSerializer.Serialize(data, EventJson)}\n\n");
}

/// <summary>Admits, runs and answers generations: the model (503), the memory estimate (422), the queue (429), then the pipeline.</summary>
internal sealed partial class ImageRunner(StableDiffusionPipelineProvider pipelines, GenerationQueue queue, LatentPreview preview, IOptions<ImageApiOptions> options,
    ILogger<ImageRunner> logger)
{
    private readonly ImageApiOptions _limits = options.Value;

    /// <summary>Runs the job and answers with the image and its seed and safety headers.</summary>
    public async Task<IResult> RespondWithImageAsync(HttpContext http, ImageJob job, CancellationToken cancellationToken)
    {
        (StableDiffusionPipeline? pipe, IDisposable? slot, IResult? refusal) = await AdmitAsync(http, job, cancellationToken).ConfigureAwait(false);
        if (refusal is not null)
        {
            return refusal;
        }

        using (slot)
        {
            var steps = new StepTracker(null);
            GenerationResult? result;
            try
            {
                result = await RunAsync(pipe!, job, steps, null, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is ArgumentException or SchedulerConfigException)
            {
                // The pipeline's own checks (a scheduler name, more steps than the model has timesteps): the message says what to change.
                return TypedResults.Problem(ex.Message, statusCode: StatusCodes.Status400BadRequest, title: "The request cannot be run.");
            }

            if (result is null)
            {
                return Results.Empty;
            }

            using (result)
            {
                bool? flagged = result.NsfwContentDetected?[0];
                http.Response.Headers[ImageApi.SeedHeader] = result.Seed?.ToString(CultureInfo.InvariantCulture);
                if (flagged is bool nsfw)
                {
                    http.Response.Headers[ImageApi.NsfwHeader] = nsfw ? "true" : "false";
                }

                // PNG carries the settings in its parameters chunk, as web UIs write it; JPEG and WebP carry the pixels only.
                (string mediaType, SKEncodedImageFormat? encoder) = ImageRequest.Formats[job.Settings.Format ?? "png"];
                byte[] body = encoder is { } format ? SkiaImageCodec.Encode(result.Images[0], format) : result.ToPng();
                return TypedResults.File(body, mediaType);
            }
        }
    }

    /// <summary>Runs the job, streaming <c>progress</c> events (with a preview PNG when the step has one), then <c>image</c>.</summary>
    public async Task<IResult> StreamAsync(HttpContext http, ImageJob job, CancellationToken cancellationToken)
    {
        (StableDiffusionPipeline? pipe, IDisposable? slot, IResult? refusal) = await AdmitAsync(http, job, cancellationToken).ConfigureAwait(false);
        if (refusal is not null)
        {
            return refusal;
        }

        using (slot)
        {
            HttpResponse response = http.Response;
            response.ContentType = "text/event-stream";
            response.Headers.CacheControl = "no-cache";
            await response.StartAsync(cancellationToken).ConfigureAwait(false);

            // Reports arrive on the generating thread; they are written in order by one writer, stale previews skipped.
            var events = System.Threading.Channels.Channel.CreateBounded<byte[]>(new System.Threading.Channels.BoundedChannelOptions(8)
            {
                FullMode = System.Threading.Channels.BoundedChannelFullMode.DropOldest, SingleReader = true,
            });
            Task writer = WriteEventsAsync(response, events.Reader, cancellationToken);
            var steps = new StepTracker(progress => events.Writer.TryWrite(ImageApi.Event("progress", new
            {
                stage = progress.Stage.ToString(),
                step = progress.Step,
                totalSteps = progress.TotalSteps,
                preview = progress.Preview is { } image ? Convert.ToBase64String(image.ToPng()) : null,
            })));
            try
            {
                using GenerationResult? result = await RunAsync(pipe!, job, steps, preview, cancellationToken).ConfigureAwait(false);
                if (result is not null)
                {
                    events.Writer.TryWrite(ImageApi.Event("image", new
                    {
                        seed = result.Seed,
                        nsfwContentDetected = result.NsfwContentDetected?[0],
                        mediaType = "image/png",
                        data = Convert.ToBase64String(result.ToPng()),
                    }));
                }
            }
            catch (Exception ex) when (ex is ArgumentException or SchedulerConfigException or ModelRunException)
            {
                events.Writer.TryWrite(ImageApi.Event("error", new { detail = ex.Message }));
            }
            finally
            {
                events.Writer.TryComplete();

                // The slot bounds generations, not connections: a slow or vanished client still being written to does not hold it.
                slot!.Dispose();
            }

            await writer.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            return Results.Empty;
        }
    }

    private static async Task WriteEventsAsync(HttpResponse response, System.Threading.Channels.ChannelReader<byte[]> events, CancellationToken cancellationToken)
    {
        await foreach (byte[] data in events.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            await response.Body.WriteAsync(data, cancellationToken).ConfigureAwait(false);
            await response.Body.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The loaded pipeline and a generation slot, or why the request cannot run now.</summary>
    private async Task<(StableDiffusionPipeline? Pipe, IDisposable? Slot, IResult? Refusal)> AdmitAsync(HttpContext http, ImageJob job, CancellationToken cancellationToken)
    {
        StableDiffusionPipeline pipe;
        try
        {
            pipe = await pipelines.GetPipelineAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is ModelLoadException or Hub.HubException or ExecutionProviders.ExecutionProviderException or InvalidOperationException)
        {
            LogModelUnavailable(logger, ex);
            return (null, null, TypedResults.Problem(ex.Message, statusCode: StatusCodes.Status503ServiceUnavailable, title: "The model could not be loaded."));
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return (null, null, Results.Empty);
        }

        // Refuse what would exhaust the machine before it starts: the estimate grows with the fourth power of the side.
        (int width, int height) = job.Size(pipe);
        bool guided = job.Settings.GuidanceValue > 1;
        long need = GenerationMemoryEstimator.Estimate(width, height, 1, guided).TotalBytes;
        if (need > _limits.MemoryBudgetBytes)
        {
            int side = GenerationMemoryEstimator.LargestSquareSide(_limits.MemoryBudgetBytes, 1, guided);
            var extensions = new Dictionary<string, object?> { ["estimatedBytes"] = need, ["budgetBytes"] = _limits.MemoryBudgetBytes, ["largestSize"] = side };
            return (null, null, TypedResults.Problem(
                string.Create(CultureInfo.InvariantCulture,
                    $"A {width}x{height} image needs about {need / 1e9:0.0} GB by the memory estimate, over this server's budget of {_limits.MemoryBudgetBytes / 1e9:0.0} GB (ImageApi:MemoryBudgetBytes). The largest size that fits is {side}x{side} (or the same number of pixels in another shape)."),
                statusCode: StatusCodes.Status422UnprocessableEntity, title: "The image is too large for this server's memory.", extensions: extensions));
        }

        IDisposable? slot;
        try
        {
            slot = await queue.TryEnterAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return (null, null, Results.Empty);
        }

        if (slot is null)
        {
            int retryAfter = (int)queue.RetryAfter.TotalSeconds;
            http.Response.Headers.RetryAfter = retryAfter.ToString(CultureInfo.InvariantCulture);
            return (null, null, TypedResults.Problem(
                $"{_limits.MaxConcurrentGenerations} generation(s) are running and {_limits.MaxQueueLength} waiting, the most this server queues (ImageApi:MaxQueueLength). Retry in {retryAfter} s.",
                statusCode: StatusCodes.Status429TooManyRequests, title: "Too many requests."));
        }

        return (pipe, slot, null);
    }

    /// <summary>Runs the job; null when the client went away (nothing to send). The pipeline's own refusals become 400s by the caller.</summary>
    private async Task<GenerationResult?> RunAsync(StableDiffusionPipeline pipe, ImageJob job, StepTracker steps, LatentPreview? previews, CancellationToken cancellationToken)
    {
        string prompt = Truncate(job.Settings.Prompt!);
        long start = Stopwatch.GetTimestamp();
        LogGenerating(logger, prompt, job.Settings.StepsValue, job.Settings.SeedValue);
        try
        {
            GenerationResult result = await job.RunAsync(pipe, steps, previews, Math.Max(1, _limits.PreviewInterval), cancellationToken).ConfigureAwait(false);
            LogGenerated(logger, result.Seed ?? 0, Stopwatch.GetElapsedTime(start).TotalSeconds, result.NsfwContentDetected?[0] == true);
            return result;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            LogCancelled(logger, prompt, steps.Step, steps.TotalSteps);
            return null;
        }
    }

    private string Truncate(string prompt) => prompt.Length <= _limits.LoggedPromptLength
        ? prompt
        : string.Create(CultureInfo.InvariantCulture, $"{prompt.AsSpan(0, _limits.LoggedPromptLength)}… ({prompt.Length} characters)");

    [LoggerMessage(Level = LogLevel.Information, Message = "Generating \"{Prompt}\" ({Steps} steps, seed {Seed})")]
    private static partial void LogGenerating(ILogger logger, string prompt, int steps, ulong? seed);

    [LoggerMessage(Level = LogLevel.Information, Message = "Generated seed {Seed} in {Seconds:0.00} s (flagged: {Flagged})")]
    private static partial void LogGenerated(ILogger logger, ulong seed, double seconds, bool flagged);

    [LoggerMessage(Level = LogLevel.Information, Message = "The client disconnected: the generation of \"{Prompt}\" was cancelled after step {Step} of {TotalSteps}")]
    private static partial void LogCancelled(ILogger logger, string prompt, int step, int totalSteps);

    [LoggerMessage(Level = LogLevel.Error, Message = "The model could not be loaded")]
    private static partial void LogModelUnavailable(ILogger logger, Exception exception);

    /// <summary>Remembers the last denoising step (for the cancellation log) and forwards every report.</summary>
    private sealed class StepTracker(Action<GenerationProgress>? forward) : IProgress<GenerationProgress>
    {
        public int Step { get; private set; }

        public int TotalSteps { get; private set; }

        public void Report(GenerationProgress value)
        {
            if (value.Stage == GenerationStage.Denoising)
            {
                (Step, TotalSteps) = (value.Step, value.TotalSteps);
            }

            forward?.Invoke(value);
        }
    }
}

/// <summary>Ready once the model has loaded (<c>GET /health/ready</c>).</summary>
internal sealed class ModelLoadedCheck(StableDiffusionPipelineProvider pipelines) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(pipelines.IsLoaded ? HealthCheckResult.Healthy($"{pipelines.Model} is loaded.") : HealthCheckResult.Unhealthy($"{pipelines.Model} is not loaded yet."));
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
