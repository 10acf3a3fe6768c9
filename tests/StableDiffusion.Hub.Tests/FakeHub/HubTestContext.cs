using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging.Testing;
using StableDiffusion.Hub;

namespace StableDiffusion.Hub.Tests.FakeHub;

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

    /// <summary>
    /// Writes a cache the way huggingface_hub does (documented layout, relative links, no listing cache as in versions
    /// before 1.22), for a repository the fake Hub does not serve.
    /// </summary>
    public static string WritePythonCache(string cacheDirectory, string repoId, string revision, out string commit, Dictionary<string, byte[]>? files = null)
    {
        files ??= new Dictionary<string, byte[]>
        {
            ["config.json"] = Encoding.UTF8.GetBytes("{\"a\": 1}"),
            ["unet/model.onnx"] = Encoding.UTF8.GetBytes("weights of the unet"),
        };
        commit = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(20));
        string storage = Path.Combine(cacheDirectory, "models--" + repoId.Replace("/", "--", StringComparison.Ordinal));
        Directory.CreateDirectory(Path.Combine(storage, "refs"));
        File.WriteAllText(Path.Combine(storage, "refs", revision), commit);
        Directory.CreateDirectory(Path.Combine(storage, "blobs"));
        string snapshot = Path.Combine(storage, "snapshots", commit);
        foreach ((string path, byte[] content) in files)
        {
            string etag = path.EndsWith(".json", StringComparison.Ordinal) || path.EndsWith(".txt", StringComparison.Ordinal)
                ? FakeFile.GitBlobSha1(content)
                : Convert.ToHexStringLower(SHA256.HashData(content));
            File.WriteAllBytes(Path.Combine(storage, "blobs", etag), content);
            string pointer = Path.Combine(snapshot, path);
            Directory.CreateDirectory(Path.GetDirectoryName(pointer)!);
            string up = string.Concat(Enumerable.Repeat("../", path.Count(c => c == '/') + 2));
            File.CreateSymbolicLink(pointer, $"{up}blobs/{etag}");
        }

        Directory.CreateDirectory(Path.Combine(cacheDirectory, ".locks", "models--" + repoId.Replace("/", "--", StringComparison.Ordinal)));
        return snapshot;
    }

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
