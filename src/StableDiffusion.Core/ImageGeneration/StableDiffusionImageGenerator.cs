// IImageGenerator is marked experimental (MEAI001) in Microsoft.Extensions.AI.Abstractions 10.x; implementing it is the point.
#pragma warning disable MEAI001

using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.AI;
using StableDiffusion.DependencyInjection;
using StableDiffusion.Imaging;
using StableDiffusion.Pipelines;
using StableDiffusion.Schedulers;

namespace StableDiffusion.ImageGeneration;

/// <summary>
/// The Stable Diffusion pipelines behind Microsoft.Extensions.AI's <see cref="IImageGenerator"/>: a prompt alone is
/// text-to-image, a prompt with one original image is image-to-image, and with a mask as well it is inpainting; all three
/// run on the text pipeline's loaded sessions.
/// </summary>
/// <remarks>
/// <see cref="ImageGenerationOptions"/> map to the request: <c>Count</c> to <see cref="DiffusionRequest.NumImagesPerPrompt"/>,
/// <c>ImageSize</c> to the height and width, <c>ResponseFormat</c> <see cref="ImageGenerationResponseFormat.Data"/> (the
/// default; the images are PNGs with their settings, as <see cref="DataContent"/>s). The rest (seed, steps, guidance,
/// negative prompt, scheduler, strength, mask, progress) comes through <c>AdditionalProperties</c>, under the keys of
/// <see cref="ImageGenerationProperties"/>. Each image's content carries its seed and the safety checker's verdict in its
/// own <c>AdditionalProperties</c> (<c>"seed"</c>, <c>"nsfw_content_detected"</c>); the response's
/// <see cref="ImageGenerationResponse.RawRepresentation"/> is the <see cref="GenerationResult"/>. The generator never
/// disposes the pipeline it was given.
/// </remarks>
public sealed class StableDiffusionImageGenerator : IImageGenerator
{
    /// <summary>The key of an image content's seed in its <c>AdditionalProperties</c>.</summary>
    public const string SeedProperty = "seed";

    /// <summary>The key of an image content's safety verdict (true: flagged, so black) in its <c>AdditionalProperties</c>; absent when the checker is off.</summary>
    public const string NsfwContentDetectedProperty = "nsfw_content_detected";

    private const string PngMediaType = "image/png";
    private readonly Func<CancellationToken, Task<StableDiffusionPipeline>> _pipeline;
    private readonly StableDiffusionImageGeneratorOptions _options;
    private readonly ImageGeneratorMetadata _metadata;

    /// <summary>A generator over a loaded pipeline.</summary>
    /// <param name="pipeline">The text-to-image pipeline; image editing shares its sessions.</param>
    /// <param name="options">The image decoder for editing requests; defaults when null.</param>
    public StableDiffusionImageGenerator(StableDiffusionPipeline pipeline, StableDiffusionImageGeneratorOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        _pipeline = _ => Task.FromResult(pipeline);
        _options = options ?? new();
        _metadata = new ImageGeneratorMetadata(ProviderName, null, pipeline.ModelPath);
    }

    /// <summary>A generator over the pipeline a provider loads on first use (what <c>AddImageGenerator</c> registers).</summary>
    /// <param name="pipelines">The provider.</param>
    /// <param name="options">The image decoder for editing requests; defaults when null.</param>
    public StableDiffusionImageGenerator(StableDiffusionPipelineProvider pipelines, StableDiffusionImageGeneratorOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(pipelines);
        _pipeline = pipelines.GetPipelineAsync;
        _options = options ?? new();
        _metadata = new ImageGeneratorMetadata(ProviderName, null, pipelines.Model);
    }

    /// <summary>The provider name in <see cref="ImageGeneratorMetadata"/>.</summary>
    public static string ProviderName => "StableDiffusion";

    /// <summary>An image as content for <see cref="ImageGenerationRequest.OriginalImages"/>: a PNG that needs no decoder
    /// (the pixels travel as its raw representation).</summary>
    /// <param name="image">The image.</param>
    /// <param name="name">The content's name: <c>"mask"</c> marks an inpainting mask.</param>
    public static DataContent ToContent(RgbImage image, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        return new DataContent(image.ToPng(), PngMediaType) { Name = name, RawRepresentation = image };
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The request or an option is invalid (the message names it).</exception>
    /// <exception cref="NotSupportedException">A response format or media type other than PNG data was asked for.</exception>
    public async Task<ImageGenerationResponse> GenerateAsync(ImageGenerationRequest request, ImageGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (string.IsNullOrWhiteSpace(request.Prompt))
        {
            throw new ArgumentException("The request has no prompt: set ImageGenerationRequest.Prompt to what the image should show.", nameof(request));
        }

        CheckResponseOptions(options);
        AdditionalPropertiesDictionary? properties = options?.AdditionalProperties;
        (RgbImage? image, RgbImage? mask) = ReadImages(request, properties);
        var progress = Read<IProgress<GenerationProgress>>(properties, ImageGenerationProperties.Progress);
        StableDiffusionPipeline pipe = await _pipeline(cancellationToken).ConfigureAwait(false);

        GenerationResult result;
        if (image is null)
        {
            if (properties?.ContainsKey(ImageGenerationProperties.Strength) == true)
            {
                throw new ArgumentException($"'{ImageGenerationProperties.Strength}' applies to editing: pass the image to change in ImageGenerationRequest.OriginalImages.", nameof(options));
            }

            var text = Configure(new TextToImageRequest(request.Prompt) { Height = options?.ImageSize?.Height, Width = options?.ImageSize?.Width }, options, pipe);
            result = await pipe.GenerateAsync(text, progress, cancellationToken).ConfigureAwait(false);
        }
        else if (mask is null)
        {
            if (options?.ImageSize is { } size && (size.Width != image.Width / 8 * 8 || size.Height != image.Height / 8 * 8))
            {
                throw new ArgumentException(
                    $"Image-to-image keeps the original image's size ({image.Width}x{image.Height}, rounded down to multiples of 8), but ImageSize asks for {size.Width}x{size.Height}: resize the image instead, or leave ImageSize unset.",
                    nameof(options));
            }

            using var img2img = StableDiffusionImg2ImgPipeline.FromPipe(pipe);
            var edit = Configure(new Img2ImgRequest(request.Prompt, image), options, pipe);
            edit = edit with { Strength = ReadDouble(properties, ImageGenerationProperties.Strength) ?? edit.Strength };
            result = await img2img.GenerateAsync(edit, progress, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            using var inpaint = StableDiffusionInpaintPipeline.FromPipe(pipe);
            var edit = Configure(new InpaintRequest(request.Prompt, image, mask)
            {
                // Without a size, keep the image's (diffusers would take the model's default and distort other proportions).
                Height = options?.ImageSize?.Height ?? image.Height / 8 * 8,
                Width = options?.ImageSize?.Width ?? image.Width / 8 * 8,
            }, options, pipe);
            edit = edit with { Strength = ReadDouble(properties, ImageGenerationProperties.Strength) ?? edit.Strength };
            result = await inpaint.GenerateAsync(edit, progress, cancellationToken).ConfigureAwait(false);
        }

        return ToResponse(result);
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        return serviceKey is not null ? null
            : serviceType == typeof(ImageGeneratorMetadata) ? _metadata
            : serviceType.IsInstanceOfType(this) ? this
            : null;
    }

    /// <summary>Nothing to release: the pipeline belongs to whoever gave it.</summary>
    public void Dispose()
    {
    }

    private static void CheckResponseOptions(ImageGenerationOptions? options)
    {
        if (options?.ResponseFormat is { } format && format != ImageGenerationResponseFormat.Data)
        {
            throw new NotSupportedException($"The Stable Diffusion generator returns images as data (ImageGenerationResponseFormat.Data); it hosts no files, so ResponseFormat {format} cannot be served.");
        }

        if (options?.MediaType is { } mediaType && !string.Equals(mediaType, PngMediaType, StringComparison.OrdinalIgnoreCase))
        {
            throw new NotSupportedException($"The Stable Diffusion generator writes PNGs (with their settings); MediaType '{mediaType}' is not supported: convert the image (GenerationResult.Images) with an image library.");
        }

        if (options?.Count is < 1)
        {
            throw new ArgumentException($"Count must be 1 or more, not {options.Count}.", nameof(options));
        }

        if (options?.ImageSize is { } size && (size.Width <= 0 || size.Height <= 0))
        {
            throw new ArgumentException($"ImageSize must be positive, not {size.Width}x{size.Height}.", nameof(options));
        }
    }

    private static TRequest Configure<TRequest>(TRequest request, ImageGenerationOptions? options, StableDiffusionPipeline pipe)
        where TRequest : DiffusionRequest
    {
        AdditionalPropertiesDictionary? properties = options?.AdditionalProperties;
        long? seed = ReadLong(properties, ImageGenerationProperties.Seed);
        if (seed < -1)
        {
            throw new ArgumentException($"'{ImageGenerationProperties.Seed}' must be 0 or more, or -1 for a random one, not {seed}.", nameof(options));
        }

        return (TRequest)((DiffusionRequest)request with
        {
            NumImagesPerPrompt = options?.Count ?? request.NumImagesPerPrompt,
            Seed = seed is >= 0 ? (ulong)seed.Value : null,
            NumInferenceSteps = (int?)ReadLong(properties, ImageGenerationProperties.NumInferenceSteps) ?? request.NumInferenceSteps,
            GuidanceScale = (float?)ReadDouble(properties, ImageGenerationProperties.GuidanceScale) ?? request.GuidanceScale,
            NegativePrompt = ReadString(properties, ImageGenerationProperties.NegativePrompt),
            Scheduler = ReadScheduler(properties, pipe),
        });
    }

    private (RgbImage? Image, RgbImage? Mask) ReadImages(ImageGenerationRequest request, AdditionalPropertiesDictionary? properties)
    {
        RgbImage? image = null, mask = null;
        foreach (AIContent content in request.OriginalImages ?? [])
        {
            bool isMask = content is DataContent { Name: { } name } && string.Equals(name, "mask", StringComparison.OrdinalIgnoreCase);
            RgbImage decoded = ToImage(content, isMask ? "the mask" : "the original image");
            if (isMask ? mask is not null : image is not null)
            {
                throw new ArgumentException(
                    $"OriginalImages holds more than one {(isMask ? "mask" : "image")}: Stable Diffusion edits one image at a time (name its mask \"mask\").", nameof(request));
            }

            (isMask ? ref mask : ref image) = decoded;
        }

        if (properties?.TryGetValue(ImageGenerationProperties.MaskImage, out object? maskValue) == true && maskValue is not null)
        {
            if (mask is not null)
            {
                throw new ArgumentException($"The mask is given twice: as an original image named \"mask\" and as '{ImageGenerationProperties.MaskImage}'. Keep one.", nameof(request));
            }

            mask = maskValue switch
            {
                RgbImage pixels => pixels,
                AIContent content => ToImage(content, "the mask"),
                byte[] bytes => Decode(bytes, "application/octet-stream", "the mask"),
                ReadOnlyMemory<byte> bytes => Decode(bytes, "application/octet-stream", "the mask"),
                _ => throw new ArgumentException($"'{ImageGenerationProperties.MaskImage}' must be an RgbImage, a DataContent or encoded bytes, not {maskValue.GetType().Name}.", nameof(request)),
            };
        }

        if (mask is not null && image is null)
        {
            throw new ArgumentException("A mask was given without an image to repaint: add the image to ImageGenerationRequest.OriginalImages.", nameof(request));
        }

        return (image, mask);
    }

    private RgbImage ToImage(AIContent content, string what) => content switch
    {
        { RawRepresentation: RgbImage pixels } => pixels,
        DataContent data when data.HasTopLevelMediaType("image") => Decode(data.Data, data.MediaType, what),
        DataContent data => throw new ArgumentException($"{Capitalize(what)} has media type '{data.MediaType}', not an image type.", "request"),
        _ => throw new ArgumentException($"{Capitalize(what)} is a {content.GetType().Name}; pass the image's bytes as a DataContent (a URI is not fetched).", "request"),
    };

    private RgbImage Decode(ReadOnlyMemory<byte> bytes, string mediaType, string what)
    {
        Func<ReadOnlyMemory<byte>, string, RgbImage> decoder = _options.ImageDecoder ?? throw new ArgumentException(
            $"{Capitalize(what)} is encoded ({mediaType}) and no decoder is configured: set StableDiffusionImageGeneratorOptions.ImageDecoder (e.g. with StableDiffusion.SkiaSharp's SkiaImageCodec.Decode), or pass an RgbImage with StableDiffusionImageGenerator.ToContent.",
            "request");
        return decoder(bytes, mediaType);
    }

    private static string Capitalize(string text) => string.Concat(char.ToUpperInvariant(text[0]).ToString(), text[1..]);

    private static ImageGenerationResponse ToResponse(GenerationResult result)
    {
        var contents = new List<AIContent>(result.Images.Count);
        for (int i = 0; i < result.Images.Count; i++)
        {
            var content = new DataContent(result.Images[i].ToPng(result.Parameters[i]), PngMediaType) { RawRepresentation = result.Images[i] };
            content.AdditionalProperties = new AdditionalPropertiesDictionary();
            if (result.Parameters[i].Seed is ulong seed)
            {
                content.AdditionalProperties[SeedProperty] = seed;
            }

            if (result.NsfwContentDetected is { } flags)
            {
                content.AdditionalProperties[NsfwContentDetectedProperty] = flags[i];
            }

            contents.Add(content);
        }

        return new ImageGenerationResponse(contents) { RawRepresentation = result };
    }

    private static IScheduler? ReadScheduler(AdditionalPropertiesDictionary? properties, StableDiffusionPipeline pipe) =>
        properties?.TryGetValue(ImageGenerationProperties.Scheduler, out object? value) == true ? value switch
        {
            null => null,
            IScheduler scheduler => scheduler,
            _ when ReadString(properties, ImageGenerationProperties.Scheduler) is { } name => SchedulerFactory.Create(name, pipe.Scheduler.Config),
            _ => null,
        } : null;

    private static T? Read<T>(AdditionalPropertiesDictionary? properties, string key)
        where T : class =>
        properties?.TryGetValue(key, out object? value) != true || value is null ? null
            : value as T ?? throw new ArgumentException($"'{key}' must be an {typeof(T).Name}, not {value.GetType().Name}.", "options");

    private static string? ReadString(AdditionalPropertiesDictionary? properties, string key) =>
        properties?.TryGetValue(key, out object? value) != true ? null : value switch
        {
            null => null,
            string text => text,
            JsonElement { ValueKind: JsonValueKind.String } json => json.GetString(),
            JsonElement { ValueKind: JsonValueKind.Null } => null,
            _ => throw new ArgumentException($"'{key}' must be a string, not {Describe(value)}.", "options"),
        };

    private static long? ReadLong(AdditionalPropertiesDictionary? properties, string key)
    {
        if (properties?.TryGetValue(key, out object? value) != true || value is null or JsonElement { ValueKind: JsonValueKind.Null })
        {
            return null;
        }

        return value switch
        {
            JsonElement { ValueKind: JsonValueKind.Number } json when json.TryGetInt64(out long number) => number,
            string text when long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out long number) => number,
            sbyte or byte or short or ushort or int or uint or long => Convert.ToInt64(value, CultureInfo.InvariantCulture),
            ulong number when number <= long.MaxValue => (long)number,
            _ => throw new ArgumentException($"'{key}' must be an integer, not {Describe(value)}.", "options"),
        };
    }

    private static double? ReadDouble(AdditionalPropertiesDictionary? properties, string key)
    {
        if (properties?.TryGetValue(key, out object? value) != true || value is null or JsonElement { ValueKind: JsonValueKind.Null })
        {
            return null;
        }

        double? number = value switch
        {
            JsonElement { ValueKind: JsonValueKind.Number } json => json.GetDouble(),
            string text when double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double parsed) => parsed,
            sbyte or byte or short or ushort or int or uint or long or ulong or float or double or decimal => Convert.ToDouble(value, CultureInfo.InvariantCulture),
            _ => null,
        };
        return number is double finite && double.IsFinite(finite)
            ? finite
            : throw new ArgumentException($"'{key}' must be a finite number, not {Describe(value)}.", "options");
    }

    private static string Describe(object value) => value is JsonElement json ? $"JSON {json.ValueKind.ToString().ToLowerInvariant()} {json.GetRawText()}" : $"{value.GetType().Name} '{value}'";
}
