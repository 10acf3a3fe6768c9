using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using StableDiffusion.Imaging;
using StableDiffusion.SkiaSharp;

namespace StableDiffusion.WebApi;

/// <summary>Reads and validates request bodies: JSON for <c>POST /images</c> and <c>/images/stream</c>, multipart for <c>POST /images/edit</c>.
/// Every failure is a problem response whose text says what to change.</summary>
internal static class RequestReader
{
    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web);

    /// <summary>The JSON body as a job, or the problem with it (413, 415, 400 naming an unknown or invalid field).</summary>
    public static async Task<(ImageJob? Job, IResult? Problem)> ReadJsonAsync(HttpRequest http, ImageApiOptions limits, CancellationToken cancellationToken)
    {
        if (!http.HasJsonContentType())
        {
            return (null, TypedResults.Problem("Send the request as JSON (Content-Type: application/json), e.g. {\"prompt\": \"a photo of an astronaut\"}.",
                statusCode: StatusCodes.Status415UnsupportedMediaType, title: "Unsupported media type."));
        }

        ImageRequest? request;
        try
        {
            // Parsed as a document first, so that an unknown field is named rather than silently ignored.
            using JsonDocument document = await JsonDocument.ParseAsync(http.Body, default, cancellationToken).ConfigureAwait(false);
            if (document.RootElement.ValueKind == JsonValueKind.Object)
            {
                foreach (JsonProperty property in document.RootElement.EnumerateObject())
                {
                    if (!ImageRequest.Fields.Contains(property.Name, StringComparer.OrdinalIgnoreCase))
                    {
                        return (null, Unknown(property.Name));
                    }
                }
            }

            request = document.Deserialize<ImageRequest>(JsonOptions);
        }
        catch (JsonException ex)
        {
            return (null, TypedResults.Problem($"The body is not a valid image request: {ex.Message}", statusCode: StatusCodes.Status400BadRequest, title: "Malformed JSON."));
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return (null, TooLarge(limits));
        }

        if (request is null)
        {
            return (null, TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["prompt"] = ["A prompt is required."] }));
        }

        Dictionary<string, string[]> errors = request.Validate(limits);
        if (errors.Count > 0)
        {
            return (null, TypedResults.ValidationProblem(errors));
        }

        RgbImage? image = null;
        if (request.InitImage is { } encoded)
        {
            (image, IResult? problem) = DecodeImage(() => new MemoryStream(Convert.FromBase64String(encoded)), "initImage", limits);
            if (problem is not null)
            {
                return (null, problem);
            }
        }

        return (new ImageJob(request, image), null);
    }

    /// <summary>The multipart form of <c>POST /images/edit</c> as a job: the <c>image</c> file, an optional <c>mask</c> file, and the
    /// settings as fields named as in the JSON body.</summary>
    public static async Task<(ImageJob? Job, IResult? Problem)> ReadFormAsync(HttpRequest http, ImageApiOptions limits, CancellationToken cancellationToken)
    {
        if (!http.HasFormContentType)
        {
            return (null, TypedResults.Problem("Send the image as multipart/form-data: a file field 'image', an optional file field 'mask', and 'prompt', 'strength' and the other settings as fields.",
                statusCode: StatusCodes.Status415UnsupportedMediaType, title: "Unsupported media type."));
        }

        IFormCollection form;
        try
        {
            form = await http.ReadFormAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return (null, TooLarge(limits));
        }
        catch (InvalidDataException ex)
        {
            // The form reader's own limits (section and value lengths) are also a body too large to take.
            return (null, TypedResults.Problem($"The form cannot be read: {ex.Message}", statusCode: StatusCodes.Status413PayloadTooLarge, title: "Request body too large."));
        }

        string[] editFields = ["prompt", "negativePrompt", "steps", "guidance", "seed", "scheduler", "strength", "format"];
        foreach (string name in form.Keys.Concat(form.Files.Select(f => f.Name)))
        {
            if (!editFields.Contains(name, StringComparer.OrdinalIgnoreCase) && name is not ("image" or "mask"))
            {
                return (null, Unknown(name, [.. editFields, "image (file)", "mask (file)"]));
            }
        }

        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        var request = new ImageRequest(
            form["prompt"].ToString(),
            NegativePrompt: form.TryGetValue("negativePrompt", out var negative) ? negative.ToString() : null,
            Steps: (int?)Number(form, "steps", errors, integer: true),
            Guidance: (float?)Number(form, "guidance", errors),
            Seed: (long?)Number(form, "seed", errors, integer: true),
            Scheduler: form.TryGetValue("scheduler", out var scheduler) ? scheduler.ToString() : null,
            Strength: Number(form, "strength", errors),
            Format: form.TryGetValue("format", out var format) ? format.ToString() : null);
        foreach ((string key, string[] value) in request.Validate(limits, edit: true))
        {
            errors.TryAdd(key, value);
        }

        IFormFile? imageFile = form.Files.GetFile("image");
        if (imageFile is null)
        {
            errors["image"] = ["The image to change is required, as a file field named 'image'."];
        }

        if (errors.Count > 0)
        {
            return (null, TypedResults.ValidationProblem(errors));
        }

        (RgbImage? image, IResult? problem) = DecodeImage(imageFile!.OpenReadStream, "image", limits);
        if (problem is not null)
        {
            return (null, problem);
        }

        RgbImage? mask = null;
        if (form.Files.GetFile("mask") is { } maskFile)
        {
            (mask, problem) = DecodeImage(maskFile.OpenReadStream, "mask", limits);
            if (problem is not null)
            {
                return (null, problem);
            }

            if (mask!.Width != image!.Width || mask.Height != image.Height)
            {
                return (null, TypedResults.ValidationProblem(new Dictionary<string, string[]>
                {
                    ["mask"] = [$"The mask is {mask.Width}x{mask.Height} pixels but the image is {image.Width}x{image.Height}; they must be the same size."],
                }));
            }
        }

        return (new ImageJob(request, image, mask), null);
    }

    /// <summary>413 with the limit and where to change it.</summary>
    public static ProblemHttpResult TooLarge(ImageApiOptions limits) => TypedResults.Problem(
        $"The request body is larger than the {limits.MaxRequestBodyBytes} bytes this server accepts (ImageApi:MaxRequestBodyBytes). Send a smaller image.",
        statusCode: StatusCodes.Status413PayloadTooLarge, title: "Request body too large.");

    private static ValidationProblem Unknown(string name, IEnumerable<string>? fields = null) => TypedResults.ValidationProblem(
        new Dictionary<string, string[]> { [name] = [$"Unknown field '{name}'. The fields are: {string.Join(", ", fields ?? ImageRequest.Fields)}."] },
        title: $"Unknown field '{name}'.");

    private static double? Number(IFormCollection form, string name, Dictionary<string, string[]> errors, bool integer = false)
    {
        if (!form.TryGetValue(name, out var text) || string.IsNullOrEmpty(text))
        {
            return null;
        }

        NumberStyles style = integer ? NumberStyles.AllowLeadingSign : NumberStyles.Float;
        if (double.TryParse(text.ToString(), style, CultureInfo.InvariantCulture, out double value))
        {
            return value;
        }

        errors[name] = [$"'{text}' is not {(integer ? "an integer" : "a number")}."];
        return null;
    }

    // The size is checked on the header before any pixel is decoded.
    private static (RgbImage? Image, IResult? Problem) DecodeImage(Func<Stream> open, string field, ImageApiOptions limits)
    {
        try
        {
            using Stream stream = open();
            return (SkiaImageCodec.Decode(stream, new ImageDecodeLimits { MaxWidth = limits.MaxSize, MaxHeight = limits.MaxSize, MaxPixels = (long)limits.MaxSize * limits.MaxSize }), null);
        }
        catch (Exception ex) when (ex is FormatException or InvalidDataException or ArgumentException)
        {
            string problem = ex is FormatException ? "It is not valid base64." : ex.Message;
            return (null, TypedResults.ValidationProblem(new Dictionary<string, string[]> { [field] = [$"The image cannot be used: {problem}"] }));
        }
    }
}
