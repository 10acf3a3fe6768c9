using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using StableDiffusion.ImageGeneration;
using StableDiffusion.Imaging;
using StableDiffusion.Memory;
using StableDiffusion.Pipelines;
using StableDiffusion.SkiaSharp;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.WebApi.Tests;

/// <summary>The service's limits, endpoints and documents: every status the issue names, over loopback HTTP.</summary>
[Trait("Area", "WebApi")]
public sealed class ServiceTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AnUnknownJsonField_Gets400_NamingIt()
    {
        await using TestApp app = await TestApp.StartAsync(("ImageApi:PreloadModel", "false"), ("StableDiffusion:Model", "/no/such/model"));

        JsonElement problem = await ProblemAsync(app, "/images", HttpStatusCode.BadRequest, JsonContent.Create(new { prompt = "a cat", stepz = 3 }));

        Assert.Equal("Unknown field 'stepz'.", problem.GetProperty("title").GetString());
        Assert.StartsWith("Unknown field 'stepz'. The fields are: prompt, negativePrompt, steps,", problem.GetProperty("errors").GetProperty("stepz")[0].GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ABodyOverTheLimit_Gets413()
    {
        await using TestApp app = await TestApp.StartAsync(("ImageApi:PreloadModel", "false"), ("ImageApi:MaxRequestBodyBytes", "1000000"), ("StableDiffusion:Model", "/no/such/model"));
        string big = new('a', 3_000_000);

        // Bodies of a known length, sent only after the server agrees (Expect: 100-continue): the server refuses from the
        // Content-Length alone, so the client never writes into a connection the server has closed (a broken pipe).
        using var jsonBody = new StringContent(JsonSerializer.Serialize(new { prompt = big }), Encoding.UTF8, "application/json");
        JsonElement json = await ProblemAsync(app, "/images", HttpStatusCode.RequestEntityTooLarge, jsonBody, expectContinue: true);
        using var form = new MultipartFormDataContent { { new StringContent("a cat"), "prompt" }, { new ByteArrayContent(new byte[3_000_000]), "image", "big.png" } };
        JsonElement multipart = await ProblemAsync(app, "/images/edit", HttpStatusCode.RequestEntityTooLarge, form, expectContinue: true);

        Assert.StartsWith("The request body is larger than the 1000000 bytes this server accepts (ImageApi:MaxRequestBodyBytes)", json.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(json.GetProperty("detail").GetString(), multipart.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task AnImageOverTheMemoryBudget_Gets422_NamingTheLargestSizeThatFits()
    {
        Fixtures.Require();
        await using TestApp app = await TestApp.StartAsync();
        int side = GenerationMemoryEstimator.LargestSquareSide(8L << 30);

        JsonElement problem = await ProblemAsync(app, "/images", HttpStatusCode.UnprocessableEntity, JsonContent.Create(new { prompt = "a cat", width = 1024, height = 1024 }));

        Assert.Equal(side, problem.GetProperty("largestSize").GetInt32());
        double gigabytes = GenerationMemoryEstimator.Estimate(1024, 1024).TotalBytes / 1e9;
        Assert.Contains(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"A 1024x1024 image needs about {gigabytes:0.0} GB"), problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Contains($"The largest size that fits is {side}x{side}", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.InRange(side, 512, 1016);
    }

    [Fact]
    public async Task AFullQueue_Gets429_WithRetryAfter_AndADisconnectFreesTheSlotWithinAStep()
    {
        Fixtures.Require();
        await using TestApp app = await TestApp.StartAsync(("ImageApi:MaxQueueLength", "0"), ("ImageApi:MaxSteps", "900"));

        // A long generation holds the only slot (taken before the response starts); its client reads progress, then goes away.
        using var disconnect = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/images/stream") { Content = JsonContent.Create(new { prompt = "a long one", steps = 900, seed = 1, width = 256, height = 256 }) };
        HttpResponseMessage stream = await app.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, disconnect.Token);

        using HttpResponseMessage refused = await app.Client.PostAsJsonAsync("/images", new { prompt = "a cat", steps = 2, width = 64, height = 64 }, Ct);
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.True(refused.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1), $"Retry-After: {refused.Headers.RetryAfter}");
        Assert.StartsWith("1 generation(s) are running and 0 waiting", (await refused.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("detail").GetString(), StringComparison.Ordinal);

        var events = new ServerSentEvents(await stream.Content.ReadAsStreamAsync(Ct));
        int seen = 0;
        while (seen < 3)
        {
            (string name, JsonElement data) = await events.NextAsync(Ct);
            seen = name == "progress" && data.GetProperty("stage").GetString() == "Denoising" ? data.GetProperty("step").GetInt32() : seen;
        }

        await disconnect.CancelAsync();
        stream.Dispose();
        await app.WaitForLogAsync("was cancelled after step");
        string log = app.Logs.GetSnapshot().Single(r => r.Message.Contains("was cancelled after step", StringComparison.Ordinal)).Message;
        int stoppedAt = int.Parse(log.Split("after step ")[1].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        // The server stops soon after what the client had seen, not hundreds of steps later: the margin is the events already
        // written into the connection's buffers before the client read step 3 (tens of fast tiny-model steps on a loaded machine).
        Assert.InRange(stoppedAt, seen, seen + 50);

        // The log is written as the cancelled generation unwinds; the slot is given back a moment later.
        GenerationQueue queue = app.Services.GetRequiredService<GenerationQueue>();
        for (int i = 0; i < 200 && queue.Admitted > 0; i++)
        {
            await Task.Delay(25, Ct);
        }

        Assert.Equal(0, queue.Admitted);
        using HttpResponseMessage next = await app.Client.PostAsJsonAsync("/images", new { prompt = "a cat", steps = 2, width = 64, height = 64 }, Ct);
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
    }

    [Fact]
    public async Task IdenticalSeeds_GiveIdenticalBytes()
    {
        Fixtures.Require();
        await using TestApp app = await TestApp.StartAsync();
        var body = new { prompt = "a lighthouse", steps = 3, seed = 11, width = 64, height = 64 };

        using HttpResponseMessage first = await app.Client.PostAsJsonAsync("/images", body, Ct);
        using HttpResponseMessage second = await app.Client.PostAsJsonAsync("/images", body, Ct);

        Assert.Equal(await first.Content.ReadAsByteArrayAsync(Ct), await second.Content.ReadAsByteArrayAsync(Ct));
    }

    [Fact]
    public async Task Stream_SendsProgressWithPreviews_ThenTheImage()
    {
        Fixtures.Require();
        await using TestApp app = await TestApp.StartAsync(("StableDiffusion:Pipeline:EnableSafetyChecker", "false"));
        var body = new { prompt = "a lighthouse", steps = 3, seed = 5, width = 64, height = 48, scheduler = "Euler" };

        using HttpResponseMessage response = await app.Client.PostAsJsonAsync("/images/stream", body, Ct);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var events = new List<(string Name, JsonElement Data)>();
        var reader = new ServerSentEvents(await response.Content.ReadAsStreamAsync(Ct));
        while (await reader.TryNextAsync(Ct) is { } next)
        {
            events.Add(next);
        }

        (string Name, JsonElement Data)[] steps = [.. events.Where(e => e.Name == "progress" && e.Data.GetProperty("stage").GetString() == "Denoising")];
        Assert.Equal([0, 1, 2, 3], steps.Select(e => e.Data.GetProperty("step").GetInt32()));
        RgbImage preview = SkiaImageCodec.Decode(new MemoryStream(Convert.FromBase64String(steps[^1].Data.GetProperty("preview").GetString()!)));
        Assert.Equal((8, 6), (preview.Width, preview.Height)); // the latent-to-RGB preview: an eighth of the size
        (string name, JsonElement image) = events[^1];
        Assert.Equal("image", name);
        Assert.Equal(5UL, image.GetProperty("seed").GetUInt64());

        using HttpResponseMessage direct = await app.Client.PostAsJsonAsync("/images", body, Ct);
        Assert.Equal(await direct.Content.ReadAsByteArrayAsync(Ct), Convert.FromBase64String(image.GetProperty("data").GetString()!));
    }

    [Fact]
    public async Task Edit_ChangesTheImage_AndInpaintsWithAMask()
    {
        Fixtures.Require();
        await using TestApp app = await TestApp.StartAsync(("StableDiffusion:Pipeline:EnableSafetyChecker", "false"));
        RgbImage picture = RgbImage.FromRgb([.. Enumerable.Range(0, 64 * 64 * 3).Select(i => (byte)(i * 7))], 64, 64);
        RgbImage mask = RgbImage.FromRgb([.. Enumerable.Range(0, 64 * 64 * 3).Select(i => (byte)(i / 3 % 64 < 32 ? 255 : 0))], 64, 64);

        RgbImage changed = await EditAsync(app, picture, null);
        RgbImage inpainted = await EditAsync(app, picture, mask);

        using var pipe = await StableDiffusionPipeline.FromPretrainedAsync(Fixtures.TinyModel, new StableDiffusionPipelineOptions { EnableSafetyChecker = false }, Ct);
        using var img2img = StableDiffusionImg2ImgPipeline.FromPipe(pipe);
        using var inpaint = StableDiffusionInpaintPipeline.FromPipe(pipe);
        using GenerationResult expectedChange = await img2img.GenerateAsync(new Img2ImgRequest("a watercolour", picture) { Seed = 9, NumInferenceSteps = 4, Strength = 0.5 }, Ct);
        using GenerationResult expectedInpaint = await inpaint.GenerateAsync(new InpaintRequest("a watercolour", picture, mask) { Seed = 9, NumInferenceSteps = 4, Strength = 0.5, Width = 64, Height = 64 }, Ct);
        Assert.Equal(expectedChange.Images[0].Pixels.ToArray(), changed.Pixels.ToArray());
        Assert.Equal(expectedInpaint.Images[0].Pixels.ToArray(), inpainted.Pixels.ToArray());

        using var unknown = new MultipartFormDataContent { { new StringContent("a cat"), "prompt" }, { new StringContent("3"), "stepz" } };
        JsonElement problem = await ProblemAsync(app, "/images/edit", HttpStatusCode.BadRequest, unknown);
        Assert.StartsWith("Unknown field 'stepz'.", problem.GetProperty("errors").GetProperty("stepz")[0].GetString(), StringComparison.Ordinal);
        using var noImage = new MultipartFormDataContent { { new StringContent("a cat"), "prompt" }, { new StringContent("0.5"), "strength" } };
        problem = await ProblemAsync(app, "/images/edit", HttpStatusCode.BadRequest, noImage);
        Assert.Equal("The image to change is required, as a file field named 'image'.", problem.GetProperty("errors").GetProperty("image")[0].GetString());
    }

    [Fact]
    public async Task Health_IsLiveAtOnce_AndReadyOnceTheModelIsLoaded()
    {
        Fixtures.Require();
        await using TestApp app = await TestApp.StartAsync(("ImageApi:PreloadModel", "false"));

        using HttpResponseMessage live = await app.Client.GetAsync("/health/live", Ct);
        using HttpResponseMessage notReady = await app.Client.GetAsync("/health/ready", Ct);
        using HttpResponseMessage generated = await app.Client.PostAsJsonAsync("/images", new { prompt = "a cat", steps = 1, width = 32, height = 32 }, Ct);
        using HttpResponseMessage ready = await app.Client.GetAsync("/health/ready", Ct);

        Assert.Equal((HttpStatusCode.OK, HttpStatusCode.ServiceUnavailable, HttpStatusCode.OK, HttpStatusCode.OK),
            (live.StatusCode, notReady.StatusCode, generated.StatusCode, ready.StatusCode));
    }

    [Fact]
    public async Task TheOpenApiDocument_ListsTheEndpoints_AndItsReferenceIsServedLocally()
    {
        await using TestApp app = await TestApp.StartAsync(("ImageApi:PreloadModel", "false"), ("StableDiffusion:Model", "/no/such/model"));

        JsonElement document = await app.Client.GetFromJsonAsync<JsonElement>("/openapi/v1.json", Ct);
        string reference = await app.Client.GetStringAsync("/scalar/v1", Ct);

        JsonElement paths = document.GetProperty("paths");
        Assert.All(["/images", "/images/edit", "/images/stream"], path => Assert.True(paths.TryGetProperty(path, out _), path));
        Assert.True(paths.GetProperty("/images/edit").GetProperty("post").GetProperty("requestBody").GetProperty("content").TryGetProperty("multipart/form-data", out _));
        // The reference page loads its script from this server, not from a CDN (the machine may have no internet).
        string script = System.Text.RegularExpressions.Regex.Match(reference, "<script[^>]+src=\"([^\"]+)\"").Groups[1].Value;
        Assert.False(script.StartsWith("http", StringComparison.Ordinal), script);
        using HttpResponseMessage scriptResponse = await app.Client.GetAsync(new Uri(new Uri(app.Client.BaseAddress!, "/scalar/v1"), script), Ct);
        Assert.Equal(HttpStatusCode.OK, scriptResponse.StatusCode);
    }

    [Fact]
    public async Task ThePage_HasTheFormPreviewAndGallery_AndStreamsFromTheApi()
    {
        await using TestApp app = await TestApp.StartAsync(("ImageApi:PreloadModel", "false"), ("StableDiffusion:Model", "/no/such/model"));

        using HttpResponseMessage response = await app.Client.GetAsync("/", Ct);
        string page = await response.Content.ReadAsStringAsync(Ct);

        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        Assert.All(["id=\"prompt\"", "id=\"steps\"", "id=\"seed\"", "id=\"width\"", "id=\"height\"", "id=\"generate\"", "id=\"preview\"", "id=\"gallery\"", "fetch('/images/stream'", "name === 'progress'", "name === 'image'"],
            part => Assert.Contains(part, page, StringComparison.Ordinal));
    }

    [Fact]
    public async Task ALongPrompt_IsLoggedTruncated()
    {
        Fixtures.Require();
        await using TestApp app = await TestApp.StartAsync();
        string prompt = string.Concat(Enumerable.Repeat("a very long prompt ", 16_000)); // 304 KB

        using HttpResponseMessage response = await app.Client.PostAsJsonAsync("/images", new { prompt, steps = 1, width = 32, height = 32 }, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.All(app.Logs.GetSnapshot(), r => Assert.True(r.Message.Length < 1000, $"{r.Message.Length} characters: {r.Message[..Math.Min(200, r.Message.Length)]}"));
        Assert.Contains(app.Logs.GetSnapshot(), r => r.Message.Contains($"… ({prompt.Length} characters)", StringComparison.Ordinal));
    }

    private static async Task<RgbImage> EditAsync(TestApp app, RgbImage picture, RgbImage? mask)
    {
        using var form = new MultipartFormDataContent
        {
            { new StringContent("a watercolour"), "prompt" }, { new StringContent("9"), "seed" }, { new StringContent("4"), "steps" }, { new StringContent("0.5"), "strength" },
        };
        var image = new ByteArrayContent(picture.ToPng());
        image.Headers.ContentType = new MediaTypeHeaderValue("image/png");
        form.Add(image, "image", "picture.png");
        if (mask is not null)
        {
            form.Add(new ByteArrayContent(mask.ToPng()), "mask", "mask.png");
        }

        using HttpResponseMessage response = await app.Client.PostAsync("/images/edit", form, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync(Ct));
        return SkiaImageCodec.Decode(await response.Content.ReadAsStreamAsync(Ct));
    }

    private static async Task<JsonElement> ProblemAsync(TestApp app, string path, HttpStatusCode status, HttpContent content, bool expectContinue = false)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = content };
        request.Headers.ExpectContinue = expectContinue;
        using HttpResponseMessage response = await app.Client.SendAsync(request, Ct);
        string body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == status, $"{response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        return JsonDocument.Parse(body).RootElement.Clone();
    }
}

/// <summary>Reads Server-Sent Events (<c>event:</c> and one <c>data:</c> line of JSON each) from a response stream.</summary>
internal sealed class ServerSentEvents(Stream stream)
{
    private readonly StreamReader _reader = new(stream, Encoding.UTF8);

    public async Task<(string Name, JsonElement Data)> NextAsync(CancellationToken cancellationToken) =>
        await TryNextAsync(cancellationToken) ?? throw new InvalidOperationException("The stream ended.");

    public async Task<(string Name, JsonElement Data)?> TryNextAsync(CancellationToken cancellationToken)
    {
        string? name = null, data = null;
        while (await _reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line.Length == 0 && name is not null)
            {
                return (name, JsonDocument.Parse(data!).RootElement.Clone());
            }

            if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                name = line["event: ".Length..];
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                data = line["data: ".Length..];
            }
        }

        return null;
    }
}
