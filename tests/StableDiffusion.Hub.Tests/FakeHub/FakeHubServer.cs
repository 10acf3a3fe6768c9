using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace StableDiffusion.Hub.Tests.FakeHub;

/// <summary>One request the fake Hub received.</summary>
/// <param name="Method">GET or HEAD.</param>
/// <param name="ToCdn">Sent to the CDN port (the storage host LFS files redirect to), not the Hub port.</param>
/// <param name="Path">The raw path as sent (still percent-encoded).</param>
/// <param name="Authorization">The <c>Authorization</c> header, if any.</param>
/// <param name="Range">The <c>Range</c> header, if any.</param>
/// <param name="At">When it arrived.</param>
public sealed record RecordedRequest(string Method, bool ToCdn, string Path, string? Authorization, string? Range, DateTimeOffset At)
{
    public bool IsResolve(string filePath) => !ToCdn && Path.Contains("/resolve/", StringComparison.Ordinal) && Path.EndsWith("/" + filePath, StringComparison.Ordinal);

    public bool IsContentGet(FakeFile file) =>
        Method == "GET" && (ToCdn ? Path == "/cdn/" + file.Sha256 : !file.IsLfs && IsResolve(file.Path));
}

/// <summary>
/// A Hugging Face Hub served on loopback by Kestrel, speaking the protocol <c>huggingface_hub</c> uses: the revision and
/// tree APIs, <c>HEAD</c>/<c>GET</c> of <c>/{repo}/resolve/{revision}/{path}</c> with the Hub's headers, LFS files redirected
/// to a second port (the "CDN") with a signed URL, byte ranges, and faults to inject (statuses, dropped connections,
/// ignored ranges, corrupted bodies).
/// </summary>
public sealed class FakeHubServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, FakeRepository> _repositories = new(StringComparer.Ordinal);
    private readonly List<Fault> _faults = [];
    private int _hubPort;
    private int _cdnPort;

    private FakeHubServer(WebApplication app) => _app = app;

    public Uri Endpoint { get; private set; } = null!;

    public Uri CdnEndpoint { get; private set; } = null!;

    public ConcurrentQueue<RecordedRequest> Requests { get; } = new();

    /// <summary>Splits tree listings into pages of this many entries (with <c>Link: rel="next"</c>); 0 for one page.</summary>
    public int TreePageSize { get; set; }

    public static async Task<FakeHubServer> StartAsync()
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(IPAddress.Loopback, 0);
            kestrel.Listen(IPAddress.Loopback, 0);
        });
        WebApplication app = builder.Build();
        var server = new FakeHubServer(app);
        app.Run(server.HandleAsync);
        await app.StartAsync();
        Uri[] addresses = [.. app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Select(a => new Uri(a))];
        server.Endpoint = addresses[0];
        server.CdnEndpoint = addresses[1];
        server._hubPort = addresses[0].Port;
        server._cdnPort = addresses[1].Port;
        return server;
    }

    /// <summary>A loopback URL nothing listens on: connections are refused, as with no network.</summary>
    public static Uri UnreachableEndpoint()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return new Uri($"http://127.0.0.1:{port}");
    }

    public FakeRepository AddRepository(string repoId)
    {
        var repository = new FakeRepository(repoId);
        _repositories[repoId] = repository;
        return repository;
    }

    /// <summary>Answers the next <paramref name="times"/> matching requests with <paramref name="status"/> (and headers) instead.</summary>
    public void FailWith(Func<RecordedRequest, bool> match, int times, int status, params (string Name, string Value)[] headers) =>
        AddFault(new Fault(match, times, FaultKind.Status) { Status = status, Headers = headers });

    /// <summary>Cuts the connection after <paramref name="afterBytes"/> body bytes, for the next <paramref name="times"/> matching requests.</summary>
    public void DropConnection(Func<RecordedRequest, bool> match, long afterBytes, int times = 1) =>
        AddFault(new Fault(match, times, FaultKind.Drop) { DropAfter = afterBytes });

    /// <summary>Answers range requests with 200 and the whole body, for the next <paramref name="times"/> matching requests.</summary>
    public void IgnoreRange(Func<RecordedRequest, bool> match, int times = 1) => AddFault(new Fault(match, times, FaultKind.IgnoreRange));

    /// <summary>Flips one byte of the body (same size), for the next <paramref name="times"/> matching requests.</summary>
    public void Corrupt(Func<RecordedRequest, bool> match, int times = int.MaxValue) => AddFault(new Fault(match, times, FaultKind.Corrupt));

    /// <summary>Delays the answer to the next <paramref name="times"/> matching requests (for timeouts and lock tests).</summary>
    public void Delay(Func<RecordedRequest, bool> match, TimeSpan delay, int times = 1) => AddFault(new Fault(match, times, FaultKind.Delay) { Wait = delay });

    /// <summary>Sends bodies in chunks of <paramref name="chunkBytes"/> with a pause after each (a slow link), for the next <paramref name="times"/> matching requests.</summary>
    public void Throttle(Func<RecordedRequest, bool> match, int chunkBytes, TimeSpan pause, int times = int.MaxValue) =>
        AddFault(new Fault(match, times, FaultKind.Throttle) { ChunkBytes = chunkBytes, Wait = pause });

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private void AddFault(Fault fault)
    {
        lock (_faults)
        {
            _faults.Add(fault);
        }
    }

    private Fault? TakeFault(RecordedRequest request, params FaultKind[] kinds)
    {
        lock (_faults)
        {
            Fault? fault = _faults.FirstOrDefault(f => f.Remaining > 0 && kinds.Contains(f.Kind) && f.Match(request));
            if (fault is not null)
            {
                fault.Remaining--;
            }

            return fault;
        }
    }

    private async Task HandleAsync(HttpContext context)
    {
        string raw = context.Features.Get<IHttpRequestFeature>()!.RawTarget;
        string path = raw.Split('?')[0];
        string? query = raw.Contains('?', StringComparison.Ordinal) ? raw[(raw.IndexOf('?', StringComparison.Ordinal) + 1)..] : null;
        var request = new RecordedRequest(
            context.Request.Method,
            context.Connection.LocalPort == _cdnPort,
            path,
            context.Request.Headers.Authorization.FirstOrDefault(),
            context.Request.Headers.Range.FirstOrDefault(),
            DateTimeOffset.UtcNow);
        Requests.Enqueue(request);

        if (TakeFault(request, FaultKind.Delay) is { } delay)
        {
            await Task.Delay(delay.Wait, context.RequestAborted);
        }

        if (TakeFault(request, FaultKind.Status) is { } failure)
        {
            context.Response.StatusCode = failure.Status;
            foreach ((string name, string value) in failure.Headers)
            {
                context.Response.Headers[name] = value;
            }

            return;
        }

        string[] segments = [.. path.Split('/', StringSplitOptions.RemoveEmptyEntries).Select(Uri.UnescapeDataString)];
        if (request.ToCdn)
        {
            await ServeCdnAsync(context, request, segments);
        }
        else if (segments is ["api", "models", _, _, _, ..])
        {
            await ServeApiAsync(context, request, segments, query);
        }
        else if (segments is [_, _, "resolve", _, _, ..])
        {
            await ServeResolveAsync(context, request, segments, path);
        }
        else
        {
            context.Response.StatusCode = 404;
        }
    }

    private async Task ServeApiAsync(HttpContext context, RecordedRequest request, string[] segments, string? query)
    {
        string repoId = $"{segments[2]}/{segments[3]}";
        if (!TryFindRepository(context, repoId, request, out FakeRepository? repository, redirectFrom: $"/api/models/{repoId}/", redirectTo: "/api/models/{0}/"))
        {
            return;
        }

        string action = segments[4];
        string revision = string.Join('/', segments[5..]);
        string? commit = repository.Resolve(revision);
        if (commit is null)
        {
            Error(context, 404, "RevisionNotFound", $"Invalid rev id: {revision}");
            return;
        }

        context.Response.ContentType = "application/json";
        if (action == "revision")
        {
            await context.Response.WriteAsync(JsonSerializer.Serialize(new
            {
                id = repository.Id,
                sha = commit,
                siblings = repository.Files(commit).Keys.Select(p => new { rfilename = p }),
            }));
            return;
        }

        if (action != "tree")
        {
            context.Response.StatusCode = 404;
            return;
        }

        List<object> entries = [.. repository.Files(commit).Values.OrderBy(f => f.Path, StringComparer.Ordinal).Select(TreeEntry)];
        int cursor = query is not null && query.Split('&').FirstOrDefault(p => p.StartsWith("cursor=", StringComparison.Ordinal)) is { } c
            ? int.Parse(c["cursor=".Length..], CultureInfo.InvariantCulture)
            : 0;
        if (TreePageSize > 0)
        {
            int next = cursor + TreePageSize;
            if (next < entries.Count)
            {
                context.Response.Headers["Link"] = $"<{request.Path}?recursive=true&expand=false&cursor={next}>; rel=\"next\"";
            }

            entries = [.. entries.Skip(cursor).Take(TreePageSize)];
        }

        await context.Response.WriteAsync(JsonSerializer.Serialize(entries));
    }

    private static object TreeEntry(FakeFile file) => file.IsLfs
        ? new { type = "file", path = file.Path, size = file.Content.Length, oid = file.GitSha1, lfs = new { oid = file.Sha256, size = file.Content.Length, pointerSize = 134 } }
        : new { type = "file", path = file.Path, size = file.Content.Length, oid = file.GitSha1, lfs = (object?)null };

    private async Task ServeResolveAsync(HttpContext context, RecordedRequest request, string[] segments, string rawPath)
    {
        string repoId = $"{segments[0]}/{segments[1]}";
        if (!TryFindRepository(context, repoId, request, out FakeRepository? repository, redirectFrom: $"/{repoId}/", redirectTo: "/{0}/", rawPath))
        {
            return;
        }

        string revision = segments[3];
        string filePath = string.Join('/', segments[4..]);
        string? commit = repository.Resolve(revision);
        if (commit is null)
        {
            Error(context, 404, "RevisionNotFound", $"Invalid rev id: {revision}");
            return;
        }

        context.Response.Headers["X-Repo-Commit"] = commit;
        if (!repository.Files(commit).TryGetValue(filePath, out FakeFile? file))
        {
            Error(context, 404, "EntryNotFound", $"{filePath} does not exist on \"{revision}\"");
            return;
        }

        if (file.IsLfs)
        {
            context.Response.StatusCode = 302;
            context.Response.Headers.Location = $"{CdnEndpoint.AbsoluteUri.TrimEnd('/')}/cdn/{file.Sha256}?X-Amz-Signature=signed-{Guid.NewGuid():N}";
            context.Response.Headers["X-Linked-Etag"] = $"\"{file.Sha256}\"";
            context.Response.Headers["X-Linked-Size"] = file.Content.Length.ToString(CultureInfo.InvariantCulture);
            context.Response.Headers.ETag = $"\"{file.GitSha1}\"";
            // Like the Hub, a redirect carries a small body length that is not the file's size.
            context.Response.ContentLength = 0;
            return;
        }

        context.Response.Headers.ETag = $"\"{file.GitSha1}\"";
        await ServeContentAsync(context, request, file.Content);
    }

    private async Task ServeCdnAsync(HttpContext context, RecordedRequest request, string[] segments)
    {
        if (segments is not ["cdn", string sha256] || _repositories.Values.Select(r => r.FindBySha256(sha256)).FirstOrDefault(f => f is not null) is not { } file)
        {
            context.Response.StatusCode = 404;
            return;
        }

        await ServeContentAsync(context, request, file.Content);
    }

    private async Task ServeContentAsync(HttpContext context, RecordedRequest request, byte[] content)
    {
        Fault? ignoreRange = request.Method == "GET" ? TakeFault(request, FaultKind.IgnoreRange) : null;
        long start = 0;
        if (request.Range is { } range && ignoreRange is null && range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-'))
        {
            start = long.Parse(range["bytes=".Length..^1], CultureInfo.InvariantCulture);
            if (start >= content.Length)
            {
                context.Response.StatusCode = 416;
                context.Response.Headers.ContentRange = $"bytes */{content.Length}";
                return;
            }

            context.Response.StatusCode = 206;
            context.Response.Headers.ContentRange = $"bytes {start}-{content.Length - 1}/{content.Length}";
        }

        byte[] body = content[(int)start..];
        context.Response.ContentLength = body.Length;
        context.Response.Headers.AcceptRanges = "bytes";
        if (request.Method == "HEAD")
        {
            return;
        }

        if (TakeFault(request, FaultKind.Corrupt) is not null && body.Length > 0)
        {
            body = [.. body];
            body[body.Length / 2] ^= 0xFF;
        }

        if (TakeFault(request, FaultKind.Drop) is { } drop)
        {
            await context.Response.Body.WriteAsync(body.AsMemory(0, (int)Math.Min(drop.DropAfter, body.Length)));
            await context.Response.Body.FlushAsync();
            // Let the client read what was sent before the reset, which would otherwise discard it in flight.
            await Task.Delay(100);
            context.Abort();
            return;
        }

        if (TakeFault(request, FaultKind.Throttle) is { } throttle)
        {
            try
            {
                for (int offset = 0; offset < body.Length; offset += throttle.ChunkBytes)
                {
                    await context.Response.Body.WriteAsync(body.AsMemory(offset, Math.Min(throttle.ChunkBytes, body.Length - offset)), context.RequestAborted);
                    await context.Response.Body.FlushAsync(context.RequestAborted);
                    await Task.Delay(throttle.Wait, context.RequestAborted);
                }
            }
            catch (OperationCanceledException)
            {
                // The client went away (a cancelled download).
            }

            return;
        }

        await context.Response.Body.WriteAsync(body);
    }

    /// <summary>Finds the repository, answering redirects (renamed), 404, 401 and 403 as the Hub does; false when answered.</summary>
    private bool TryFindRepository(
        HttpContext context, string repoId, RecordedRequest request, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out FakeRepository? repository,
        string redirectFrom, string redirectTo, string? rawPath = null)
    {
        if (!_repositories.TryGetValue(repoId, out repository))
        {
            if (_repositories.Values.FirstOrDefault(r => r.FormerId == repoId) is { } renamed)
            {
                string path = rawPath ?? request.Path;
                context.Response.StatusCode = 307;
                context.Response.Headers.Location = string.Format(CultureInfo.InvariantCulture, redirectTo, renamed.Id) + path[redirectFrom.Length..];
                return false;
            }

            Error(context, request.Authorization is null ? 401 : 404, "RepoNotFound", "Repository not found");
            return false;
        }

        string? token = request.Authorization is { } header && header.StartsWith("Bearer ", StringComparison.Ordinal) ? header["Bearer ".Length..] : null;
        if (repository.AccessToken is { } required && token != required)
        {
            Error(context, token is null ? 401 : 404, "RepoNotFound", "Repository not found");
            return false;
        }

        if (repository.GatedApprovedToken is { } approved && token != approved)
        {
            Error(context, token is null ? 401 : 403, "GatedRepo", "Access to model " + repoId + " is restricted and you are not in the authorized list.");
            return false;
        }

        return true;
    }

    private static void Error(HttpContext context, int status, string code, string message)
    {
        context.Response.StatusCode = status;
        context.Response.Headers["X-Error-Code"] = code;
        context.Response.Headers["X-Error-Message"] = message;
    }

    private enum FaultKind
    {
        Status,
        Drop,
        IgnoreRange,
        Corrupt,
        Delay,
        Throttle,
    }

    private sealed class Fault(Func<RecordedRequest, bool> match, int times, FaultKind kind)
    {
        public Func<RecordedRequest, bool> Match { get; } = match;

        public FaultKind Kind { get; } = kind;

        public int Remaining { get; set; } = times;

        public int Status { get; init; }

        public (string Name, string Value)[] Headers { get; init; } = [];

        public long DropAfter { get; init; }

        public TimeSpan Wait { get; init; }

        public int ChunkBytes { get; init; }
    }
}
