using Microsoft.Extensions.Logging.Testing;
using StableDiffusion.Hub;

namespace StableDiffusion.Core.Tests.Hub.FakeHub;

/// <summary>A fake Hub, an empty cache folder and clients wired to both, with delays shortened so that tests take milliseconds.</summary>
public sealed class HubTestContext : IAsyncDisposable
{
    public const string Token = "hf_testtoken_0123456789";

    private readonly List<HubClient> _clients = [];

    private HubTestContext(FakeHubServer server, string cacheDirectory)
    {
        Server = server;
        CacheDirectory = cacheDirectory;
    }

    public FakeHubServer Server { get; }

    public string CacheDirectory { get; }

    public FakeLogger<HubClient> Logger { get; } = new();

    public static async Task<HubTestContext> StartAsync()
    {
        string cache = Path.Combine(Path.GetTempPath(), "sd-hub-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(cache);
        return new HubTestContext(await FakeHubServer.StartAsync(), cache);
    }

    /// <summary>Options pointing at the fake Hub and the temporary cache, with millisecond retry and resume delays.</summary>
    public HubOptions Options(string? token = Token) => new()
    {
        Endpoint = Server.Endpoint,
        CacheDirectory = CacheDirectory,
        Token = token,
        MaxRetries = 3,
        InitialRetryDelay = TimeSpan.FromMilliseconds(5),
        MaxRetryDelay = TimeSpan.FromMilliseconds(20),
        ResumeDelay = TimeSpan.Zero,
        MetadataTimeout = TimeSpan.FromSeconds(10),
        DownloadTimeout = TimeSpan.FromSeconds(10),
    };

    public HubClient Client(HubOptions? options = null)
    {
        var client = new HubClient(options ?? Options(), logger: Logger);
        _clients.Add(client);
        return client;
    }

    /// <summary>The repository's cache folder, <c>models--org--name</c>.</summary>
    public string Storage(string repoId) => Path.Combine(CacheDirectory, "models--" + repoId.Replace("/", "--", StringComparison.Ordinal));

    /// <summary>Every file under a folder of the cache, relative and '/'-separated (empty when the folder is missing).</summary>
    public static string[] FilesUnder(string folder) => Directory.Exists(folder)
        ? [.. Directory.EnumerateFileSystemEntries(folder, "*", SearchOption.AllDirectories)
            .Where(p => !Directory.Exists(p) || new DirectoryInfo(p).LinkTarget is not null)
            .Select(p => Path.GetRelativePath(folder, p).Replace('\\', '/'))
            .Order(StringComparer.Ordinal)]
        : [];

    public async ValueTask DisposeAsync()
    {
        foreach (HubClient client in _clients)
        {
            client.Dispose();
        }

        await Server.DisposeAsync();
        try
        {
            Directory.Delete(CacheDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
