using PuppeteerSharp;
using StableDiffusion.Imaging;
using StableDiffusion.SkiaSharp;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.WebApi.Tests;

/// <summary>The page at <c>/</c> driven in a real headless Chromium (Debian's <c>chromium</c> package, started by the test).</summary>
[Trait("Area", "Browser")]
public sealed class BrowserTests
{
    private const string Chromium = "/usr/bin/chromium";

    [Fact]
    public async Task ThePage_GeneratesAnImage_ShowingPreviews()
    {
        Fixtures.Require();
        if (!File.Exists(Chromium))
        {
            // CI installs the browser (.ci/run), so a missing one there is a failure, not a skip.
            Assert.False(Environment.GetEnvironmentVariable("CI") == "true", $"{Chromium} is not installed: .ci/run installs it (apt-get install chromium).");
            Assert.Skip($"{Chromium} is not installed: apt-get install chromium.");
        }
        await using TestApp app = await TestApp.StartAsync(("StableDiffusion:Pipeline:EnableSafetyChecker", "false"));
        await using IBrowser browser = await Puppeteer.LaunchAsync(new LaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        });
        await using IPage page = await browser.NewPageAsync();

        await page.GoToAsync(app.Client.BaseAddress!.ToString());
        await page.EvaluateExpressionAsync("""
            document.getElementById('steps').value = '6';
            document.getElementById('seed').value = '42';
            document.getElementById('width').value = '64';
            document.getElementById('height').value = '64';
            document.getElementById('scheduler').value = 'Euler a';
            """);
        await page.ClickAsync("#generate");
        IElementHandle image = await page.WaitForSelectorAsync("#gallery img", new WaitForSelectorOptions { Timeout = 120_000 });

        int previews = await page.EvaluateExpressionAsync<int>("Number(document.getElementById('preview').dataset.previews)");
        Assert.True(previews >= 6, $"{previews} previews were shown.");
        Assert.StartsWith("Done: seed 42", await page.EvaluateExpressionAsync<string>("document.getElementById('status').textContent"), StringComparison.Ordinal);
        byte[] screenshot = await image.ScreenshotDataAsync();
        RgbImage shot = SkiaImageCodec.Decode(new MemoryStream(screenshot));
        byte[] pixels = shot.Pixels.ToArray();
        double mean = pixels.Average(p => (double)p);
        double deviation = Math.Sqrt(pixels.Average(p => (p - mean) * (p - mean)));
        Assert.True(deviation > 10, $"The image area is blank: mean {mean:0.0}, standard deviation {deviation:0.0}.");
    }
}
