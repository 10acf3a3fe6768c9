using System.Net.Sockets;
using StableDiffusion.Hub.Tests.FakeHub;
using StableDiffusion.Hub;
using Xunit;

namespace StableDiffusion.Hub.Tests;

/// <summary>A host name that cannot be resolved (offline, no DNS, a mistyped HF_ENDPOINT) fails at once instead of
/// waiting through five retries with backoff; other connection failures are still retried.</summary>
[Trait("Area", "Hub")]
public sealed class NameResolutionTests : IAsyncLifetime
{
    private HubTestContext _hub = null!;

    public async ValueTask InitializeAsync() => _hub = await HubTestContext.StartAsync();

    public async ValueTask DisposeAsync() => await _hub.DisposeAsync();

    public static TheoryData<string> Failures => ["NameResolutionError", "HostNotFound", "TryAgain"];

    [Theory]
    [MemberData(nameof(Failures))]
    public async Task AnUnresolvableHost_IsNotRetried(string failure)
    {
        var handler = new FailingHandler(() => failure switch
        {
            "NameResolutionError" => new HttpRequestException(HttpRequestError.NameResolutionError, "Name or service not known (huggingface.co:443)"),
            _ => new HttpRequestException("Name or service not known", new SocketException((int)Enum.Parse<SocketError>(failure))),
        });
        using var client = new HubClient(_hub.Options() with { MaxRetries = 5, InitialRetryDelay = TimeSpan.FromSeconds(5) }, handler);

        var error = await Assert.ThrowsAsync<HubUnavailableException>(
            () => client.DownloadSnapshotAsync("test-org/model", cancellationToken: TestContext.Current.CancellationToken));

        Assert.Equal(1, handler.Calls);
        Assert.StartsWith("Could not reach the Hub at ", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ARefusedConnection_IsStillRetried()
    {
        var handler = new FailingHandler(() => new HttpRequestException("Connection refused", new SocketException((int)SocketError.ConnectionRefused)));
        using var client = new HubClient(_hub.Options() with { MaxRetries = 2, InitialRetryDelay = TimeSpan.Zero }, handler);

        await Assert.ThrowsAsync<HubUnavailableException>(
            () => client.DownloadSnapshotAsync("test-org/model", cancellationToken: TestContext.Current.CancellationToken));

        Assert.Equal(3, handler.Calls);
    }

    private sealed class FailingHandler(Func<Exception> failure) : HttpMessageHandler
    {
        private int _calls;

        public int Calls => _calls;

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _calls);
            return Task.FromException<HttpResponseMessage>(failure());
        }
    }
}
