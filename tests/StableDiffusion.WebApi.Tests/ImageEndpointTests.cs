using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using StableDiffusion.Imaging;
using StableDiffusion.Pipelines;
using StableDiffusion.SkiaSharp;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.WebApi.Tests;

/// <summary><c>POST /images</c> end to end over loopback HTTP.</summary>
[Trait("Area", "WebApi")]
public sealed class ImageEndpointTests
{
    private static CancellationToken Cancellation => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Post_ReturnsThePng_WithTheSeedAndSafetyFlag()
    {
        Fixtures.Require();
        await using TestApp app = await TestApp.StartAsync();

        using HttpResponseMessage response = await app.Client.PostAsJsonAsync("/images",
            new { prompt = "a cat", negativePrompt = "blurry", steps = 4, guidance = 6.5, seed = 5, width = 64, height = 48 }, Cancellation);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("image/png", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("5", Assert.Single(response.Headers.GetValues(ImageApi.SeedHeader)));
        Assert.Contains(Assert.Single(response.Headers.GetValues(ImageApi.NsfwHeader)), new[] { "true", "false" });
        byte[] png = await response.Content.ReadAsByteArrayAsync(Cancellation);
        RgbImage image = SkiaImageCodec.Decode(new MemoryStream(png));
        Assert.Equal((64, 48), (image.Width, image.Height));
        GenerationParameters parameters = GenerationParameters.FromPng(new MemoryStream(png))!;
        Assert.Equal(("a cat", "blurry", 4, 6.5f, 5UL), (parameters.Prompt, parameters.NegativePrompt, parameters.NumInferenceSteps, parameters.GuidanceScale, parameters.Seed!.Value));
        await app.WaitForLogAsync("Generated seed 5");
    }

    [Fact]
    public async Task Post_GivesTheImageThePipelineGives()
    {
        Fixtures.Require();
        await using TestApp app = await TestApp.StartAsync(("StableDiffusion:Pipeline:EnableSafetyChecker", "false"));

        using HttpResponseMessage response = await app.Client.PostAsJsonAsync("/images",
            new { prompt = "a lighthouse at dusk", steps = 5, seed = 42, width = 64, height = 64, scheduler = "Euler a" }, Cancellation);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.False(response.Headers.Contains(ImageApi.NsfwHeader)); // the checker is off: no verdict
        RgbImage served = SkiaImageCodec.Decode(await response.Content.ReadAsStreamAsync(Cancellation));

        using StableDiffusionPipeline pipe = await StableDiffusionPipeline.FromPretrainedAsync(Fixtures.TinyModel,
            new StableDiffusionPipelineOptions { EnableSafetyChecker = false }, Cancellation);
        using GenerationResult direct = await pipe.GenerateAsync(new TextToImageRequest("a lighthouse at dusk")
        {
            NumInferenceSteps = 5,
            Seed = 42,
            Width = 64,
            Height = 64,
            Scheduler = Schedulers.SchedulerFactory.Create("Euler a", pipe.Scheduler.Config),
        }, Cancellation);

        Assert.Equal(direct.Images[0].Pixels.ToArray(), served.Pixels.ToArray());
    }

    [Fact]
    public async Task Post_WithoutASeed_ReportsTheRandomOne()
    {
        Fixtures.Require();
        await using TestApp app = await TestApp.StartAsync();

        using HttpResponseMessage response = await app.Client.PostAsJsonAsync("/images", new { prompt = "a cat", steps = 2, width = 64, height = 64 }, Cancellation);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(ulong.TryParse(Assert.Single(response.Headers.GetValues(ImageApi.SeedHeader)), out _));
    }

    [Fact]
    public async Task SeedMinusOne_IsRandom_AsInWebUis()
    {
        Fixtures.Require();
        await using TestApp app = await TestApp.StartAsync();

        using HttpResponseMessage response = await app.Client.PostAsJsonAsync("/images", new { prompt = "a cat", steps = 2, width = 64, height = 64, seed = -1 }, Cancellation);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(ulong.TryParse(Assert.Single(response.Headers.GetValues(ImageApi.SeedHeader)), out _));
    }

    [Theory]
    [InlineData("jpeg", "image/jpeg")]
    [InlineData("webp", "image/webp")]
    [InlineData("PNG", "image/png")]
    public async Task Format_ChoosesTheEncoding(string format, string mediaType)
    {
        Fixtures.Require();
        await using TestApp app = await TestApp.StartAsync();

        using HttpResponseMessage response = await app.Client.PostAsJsonAsync("/images", new { prompt = "a cat", steps = 2, seed = 3, width = 64, height = 48, format }, Cancellation);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(mediaType, response.Content.Headers.ContentType?.MediaType);
        RgbImage image = SkiaImageCodec.Decode(await response.Content.ReadAsStreamAsync(Cancellation));
        Assert.Equal((64, 48), (image.Width, image.Height));
    }

    [Fact]
    public async Task InitImage_ChangesThatImage_WithTheImageToImagePipeline()
    {
        Fixtures.Require();
        await using TestApp app = await TestApp.StartAsync(("StableDiffusion:Pipeline:EnableSafetyChecker", "false"));
        RgbImage input = RgbImage.FromRgb([.. Enumerable.Range(0, 64 * 64 * 3).Select(i => (byte)(i * 7))], 64, 64);

        using HttpResponseMessage response = await app.Client.PostAsJsonAsync("/images",
            new { prompt = "a watercolor", steps = 4, seed = 9, strength = 0.5, initImage = Convert.ToBase64String(input.ToPng()) }, Cancellation);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        RgbImage served = SkiaImageCodec.Decode(await response.Content.ReadAsStreamAsync(Cancellation));

        using StableDiffusionImg2ImgPipeline pipe = await StableDiffusionImg2ImgPipeline.FromPretrainedAsync(Fixtures.TinyModel,
            new StableDiffusionPipelineOptions { EnableSafetyChecker = false }, Cancellation);
        using GenerationResult direct = await pipe.GenerateAsync(new Img2ImgRequest("a watercolor", input) { NumInferenceSteps = 4, Seed = 9, Strength = 0.5 }, Cancellation);
        Assert.Equal(direct.Images[0].Pixels.ToArray(), served.Pixels.ToArray());
    }

    [Fact]
    public async Task BadInitImages_Get400_BeforeTheModelIsAsked()
    {
        await using TestApp app = await TestApp.StartAsync(("ImageApi:PreloadModel", "false"), ("StableDiffusion:Model", "/no/such/model"));
        RgbImage huge = RgbImage.FromRgb(new byte[2048 * 8 * 3], 2048, 8);

        JsonElement notBase64 = await ProblemAsync(app, HttpStatusCode.BadRequest, JsonContent.Create(new { prompt = "a cat", initImage = "not base64!" }));
        Assert.Equal("The image cannot be used: It is not valid base64.", notBase64.GetProperty("errors").GetProperty("initImage")[0].GetString());

        JsonElement notAnImage = await ProblemAsync(app, HttpStatusCode.BadRequest, JsonContent.Create(new { prompt = "a cat", initImage = Convert.ToBase64String("hello"u8.ToArray()) }));
        Assert.StartsWith("The image cannot be used: This is not an image that can be read", notAnImage.GetProperty("errors").GetProperty("initImage")[0].GetString(), StringComparison.Ordinal);

        JsonElement tooLarge = await ProblemAsync(app, HttpStatusCode.BadRequest, JsonContent.Create(new { prompt = "a cat", initImage = Convert.ToBase64String(huge.ToPng()) }));
        Assert.Equal("The image cannot be used: The image is 2048x8 pixels; at most 1024x1024 is accepted. Scale it down first.",
            tooLarge.GetProperty("errors").GetProperty("initImage")[0].GetString());

        JsonElement invalid = await ProblemAsync(app, HttpStatusCode.BadRequest, JsonContent.Create(new { prompt = "a cat", seed = -2, strength = 0.5, format = "gif" }));
        Assert.Equal("The seed must be 0 or more, or -1 for a random one, not -2.", invalid.GetProperty("errors").GetProperty("seed")[0].GetString());
        Assert.Equal("The strength applies to image-to-image: send the image to change as initImage (base64), or use POST /images/edit.", invalid.GetProperty("errors").GetProperty("strength")[0].GetString());
        Assert.Equal("The format must be png, jpeg or webp, not 'gif'.", invalid.GetProperty("errors").GetProperty("format")[0].GetString());
    }

    [Fact]
    public async Task BadRequests_Get400_WithAProblemDetailsMessage()
    {
        Fixtures.Require();
        await using TestApp app = await TestApp.StartAsync();

        JsonElement invalid = await ProblemAsync(app, HttpStatusCode.BadRequest, JsonContent.Create(new { steps = 0, width = 65, height = 2048, guidance = 7 }));
        Assert.Equal("A prompt is required.", invalid.GetProperty("errors").GetProperty("prompt")[0].GetString());
        Assert.Equal("Steps must be from 1 to 150, not 0.", invalid.GetProperty("errors").GetProperty("steps")[0].GetString());
        Assert.Equal("The width must be a multiple of 8 from 8 to 1024 pixels, not 65.", invalid.GetProperty("errors").GetProperty("width")[0].GetString());
        Assert.Equal("The height must be a multiple of 8 from 8 to 1024 pixels, not 2048.", invalid.GetProperty("errors").GetProperty("height")[0].GetString());

        JsonElement scheduler = await ProblemAsync(app, HttpStatusCode.BadRequest, JsonContent.Create(new { prompt = "a cat", scheduler = "no such sampler", width = 64, height = 64 }));
        Assert.StartsWith("Unknown scheduler \"no such sampler\". Known names", scheduler.GetProperty("detail").GetString(), StringComparison.Ordinal);

        JsonElement malformed = await ProblemAsync(app, HttpStatusCode.BadRequest, new StringContent("{\"prompt\": ", Encoding.UTF8, "application/json"));
        Assert.StartsWith("The body is not a valid image request: ", malformed.GetProperty("detail").GetString(), StringComparison.Ordinal);

        JsonElement wrongType = await ProblemAsync(app, HttpStatusCode.BadRequest, new StringContent("{\"prompt\": \"a cat\", \"steps\": \"many\"}", Encoding.UTF8, "application/json"));
        Assert.Contains("$.steps", wrongType.GetProperty("detail").GetString(), StringComparison.Ordinal);

        JsonElement notJson = await ProblemAsync(app, HttpStatusCode.UnsupportedMediaType, new StringContent("a cat", Encoding.UTF8, "text/plain"));
        Assert.StartsWith("Send the request as JSON", notJson.GetProperty("detail").GetString(), StringComparison.Ordinal);

        JsonElement nullBody = await ProblemAsync(app, HttpStatusCode.BadRequest, new StringContent("null", Encoding.UTF8, "application/json"));
        Assert.Equal("A prompt is required.", nullBody.GetProperty("errors").GetProperty("prompt")[0].GetString());
    }

    [Fact]
    public async Task ABadModel_Gets503_WithTheLoadError()
    {
        string missing = Path.Combine(Path.GetTempPath(), $"no-such-model-{Guid.NewGuid():N}");
        await using TestApp app = await TestApp.StartAsync(("StableDiffusion:Model", missing));

        JsonElement problem = await ProblemAsync(app, HttpStatusCode.ServiceUnavailable, JsonContent.Create(new { prompt = "a cat" }));

        Assert.Equal($"The model folder '{missing}' does not exist. Pass a folder in the diffusers ONNX layout, or a Hugging Face repository id such as '{Pipelines.DiffusionPipeline.DefaultModelId}'.",
            problem.GetProperty("detail").GetString());
        await app.WaitForLogAsync("The model could not be loaded; requests will try again"); // the preloader said so at start
    }

    [Fact]
    public async Task ClientDisconnect_CancelsTheGeneration()
    {
        Fixtures.Require();
        await using TestApp app = await TestApp.StartAsync(("ImageApi:MaxSteps", "900"));

        // 900 steps at 256x256 take far longer than this test waits: only cancellation ends the generation in time.
        using var disconnect = CancellationTokenSource.CreateLinkedTokenSource(Cancellation);
        Task<HttpResponseMessage> request = app.Client.PostAsJsonAsync("/images",
            new { prompt = "a long one", steps = 900, seed = 1, width = 256, height = 256 }, disconnect.Token);
        await app.WaitForLogAsync("Generating \"a long one\"");
        if (request.IsCompletedSuccessfully)
        {
            using HttpResponseMessage early = await request;
            Assert.Fail($"The request ended before the client disconnected: {(int)early.StatusCode} {await early.Content.ReadAsStringAsync(Cancellation)}");
        }

        await disconnect.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => request);

        await app.WaitForLogAsync("The client disconnected: the generation of \"a long one\" was cancelled");

        // The slot is free again: the next request runs at once.
        using HttpResponseMessage next = await app.Client.PostAsJsonAsync("/images", new { prompt = "a cat", steps = 2, width = 64, height = 64 }, Cancellation);
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
    }

    private static async Task<JsonElement> ProblemAsync(TestApp app, HttpStatusCode status, HttpContent content)
    {
        using (content)
        {
            using HttpResponseMessage response = await app.Client.PostAsync("/images", content, Cancellation);
            string body = await response.Content.ReadAsStringAsync(Cancellation);
            Assert.True(response.StatusCode == status, $"{response.StatusCode}: {body}");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            return JsonDocument.Parse(body).RootElement.Clone();
        }
    }

}
