using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.WebApi.Tests;

/// <summary>The sample running in-process on Kestrel, bound to 127.0.0.1 on a port the system picks, on the tiny model.</summary>
internal sealed class TestApp : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TestApp(WebApplication app, FakeLogCollector logs, Uri address)
    {
        _app = app;
        Logs = logs;
        Client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromMinutes(2) };
    }

    public HttpClient Client { get; }

    public FakeLogCollector Logs { get; }

    public IServiceProvider Services => _app.Services;

    /// <summary>Starts the app with the sample's appsettings.json, then <paramref name="settings"/> on top (the model is the tiny one).</summary>
    public static async Task<TestApp> StartAsync(params (string Key, string Value)[] settings)
    {
        var logs = new FakeLogCollector();
        string contentRoot = Path.Combine(Fixtures.RepositoryRoot, "samples", "StableDiffusion.WebApi");
        WebApplication app = ImageApi.Build(["--urls", "http://127.0.0.1:0", "--contentRoot", contentRoot], builder =>
        {
            var overrides = new Dictionary<string, string?> { ["StableDiffusion:Model"] = Fixtures.TinyModel };
            foreach ((string key, string value) in settings)
            {
                overrides[key] = value;
            }

            builder.Configuration.AddInMemoryCollection(overrides);
            builder.Logging.ClearProviders().AddProvider(new FakeLoggerProvider(logs));
        });
        await app.StartAsync(TestContext.Current.CancellationToken);
        string address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return new TestApp(app, logs, new Uri(address));
    }

    /// <summary>Waits until a log message contains <paramref name="text"/>; fails after a generous time.</summary>
    public async Task WaitForLogAsync(string text)
    {
        for (int i = 0; i < 600; i++)
        {
            if (Logs.GetSnapshot().Any(r => r.Message.Contains(text, StringComparison.Ordinal)))
            {
                return;
            }

            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        Assert.Fail($"No log message containing \"{text}\" within 30 s. Logs:\n{string.Join('\n', Logs.GetSnapshot().Select(r => r.Message))}");
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync();
    }
}
