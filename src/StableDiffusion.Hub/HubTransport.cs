using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Reflection;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;

namespace StableDiffusion.Hub;

/// <summary>What a request is about, for error messages.</summary>
/// <param name="RepoId">The repository.</param>
/// <param name="Revision">The revision asked for.</param>
/// <param name="FilePath">The file, for file requests.</param>
internal sealed record HubRequestContext(string RepoId, string Revision, string? FilePath = null)
{
    public string Describe() => FilePath is null ? $"'{RepoId}' at revision '{Revision}'" : $"'{FilePath}' of '{RepoId}' at revision '{Revision}'";
}

/// <summary>What the Hub's answer to <c>HEAD …/resolve/…</c> says about a file.</summary>
/// <param name="Commit">The commit the revision resolved to (<c>X-Repo-Commit</c>).</param>
/// <param name="Etag">The blob name: the LFS sha256 or the git blob sha1.</param>
/// <param name="Size">The content size in bytes.</param>
/// <param name="Location">Where to download the content (the storage host after a redirect).</param>
internal sealed record HubFileMetadata(string Commit, string Etag, long Size, Uri Location);

/// <summary>
/// HTTP for the Hub client: the token only to the configured endpoint's origin, retries with backoff, redirects followed
/// by hand as <c>huggingface_hub</c> does, and Hub answers turned into <see cref="HubException"/>s.
/// </summary>
internal sealed partial class HubTransport : IDisposable
{
    private const int MaxRedirects = 10;

    private readonly HttpClient _http;
    private readonly HubOptions _options;
    private readonly ILogger _logger;

    public HubTransport(HubOptions options, HttpMessageHandler? handler, ILogger logger)
    {
        _options = options;
        _logger = logger;
        _http = handler is null
            ? new HttpClient(
                new SocketsHttpHandler
                {
                    AllowAutoRedirect = false,
                    AutomaticDecompression = DecompressionMethods.None,
                    ConnectTimeout = options.MetadataTimeout,
                    PooledConnectionLifetime = TimeSpan.FromMinutes(10),
                },
                disposeHandler: true)
            : new HttpClient(handler, disposeHandler: false);
        _http.Timeout = Timeout.InfiniteTimeSpan;
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("StableDiffusion.NET", LibraryVersion()));
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("dotnet", Environment.Version.ToString()));
    }

    /// <summary>Whether <paramref name="url"/> has the endpoint's scheme, host and port: the only place the token goes.</summary>
    public bool IsEndpoint(Uri url) =>
        Uri.Compare(url, _options.Endpoint, UriComponents.SchemeAndServer, UriFormat.UriEscaped, StringComparison.OrdinalIgnoreCase) == 0;

    /// <summary>GETs a JSON document from the Hub API, following redirects; returns it with the <c>rel="next"</c> page, if any.</summary>
    public async Task<(JsonDocument Document, Uri? Next)> GetJsonAsync(Uri url, HubRequestContext context, bool retry, CancellationToken cancellationToken)
    {
        using HttpResponseMessage response = await SendFollowingRedirectsAsync(HttpMethod.Get, url, 0, context, retry, _options.MetadataTimeout, cancellationToken).ConfigureAwait(false);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.MetadataTimeout);
        try
        {
            Stream body = await response.Content.ReadAsStreamAsync(timeout.Token).ConfigureAwait(false);
            JsonDocument document = await JsonDocument.ParseAsync(body, default, timeout.Token).ConfigureAwait(false);
            return (document, NextPage(response, url));
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw Unreachable(context, new TimeoutException($"No complete answer within {_options.MetadataTimeout.TotalSeconds:0.###} s.", e));
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            throw Unreachable(context, e);
        }
        catch (JsonException e)
        {
            throw new HubException($"The Hub at {_options.Endpoint} answered with invalid JSON for {context.Describe()} ({Redact(url)}): {e.Message}", e)
            {
                RepoId = context.RepoId,
            };
        }
    }

    /// <summary>
    /// <c>HEAD</c> of a resolve URL: relative redirects (a renamed repository) are followed with the token, an absolute one
    /// (the storage host) is not: its headers carry the metadata and its <c>Location</c> is where the content is.
    /// </summary>
    public async Task<HubFileMetadata> HeadFileAsync(Uri url, HubRequestContext context, bool retry, CancellationToken cancellationToken)
    {
        for (int redirects = 0; ; redirects++)
        {
            using HttpResponseMessage response = await SendAsync(HttpMethod.Head, url, 0, context, retry, _options.MetadataTimeout, cancellationToken).ConfigureAwait(false);
            bool isRedirect = IsRedirect(response.StatusCode);
            if (isRedirect && response.Headers.Location is { IsAbsoluteUri: false } relative)
            {
                if (redirects == MaxRedirects)
                {
                    throw TooManyRedirects(context, url);
                }

                url = new Uri(url, relative);
                continue;
            }

            if (!isRedirect && !response.IsSuccessStatusCode)
            {
                throw await ToExceptionAsync(response, context, url).ConfigureAwait(false);
            }

            string? commit = Header(response, "X-Repo-Commit");
            string? etag = NormalizeEtag(Header(response, "X-Linked-Etag") ?? Header(response, "ETag"));
            long? size = ParseSize(Header(response, "X-Linked-Size")) ?? (isRedirect ? null : response.Content.Headers.ContentLength);
            if (commit is null || etag is null || size is null)
            {
                string missing = commit is null ? "X-Repo-Commit" : etag is null ? "ETag" : "a file size";
                throw new HubException(
                    $"{Redact(url)} does not look like a Hugging Face Hub answer (no {missing} header) for {context.Describe()}. " +
                    "Check HF_ENDPOINT and any proxy or firewall between you and the Hub.")
                {
                    RepoId = context.RepoId,
                };
            }

            Uri location = isRedirect && response.Headers.Location is { } absolute ? absolute : url;
            return new HubFileMetadata(commit, etag, size.Value, location);
        }
    }

    /// <summary>
    /// GETs file content from <paramref name="offset"/> (a <c>Range</c> request when above 0), following redirects; the caller
    /// checks whether the answer is 200 or 206 and owns the response.
    /// </summary>
    public Task<HttpResponseMessage> GetContentAsync(Uri url, long offset, HubRequestContext context, CancellationToken cancellationToken) =>
        SendFollowingRedirectsAsync(HttpMethod.Get, url, offset, context, retry: true, _options.DownloadTimeout, cancellationToken);

    public void Dispose() => _http.Dispose();

    /// <summary>Logs a URL without its query string, which for storage hosts carries a signature.</summary>
    public static string Redact(Uri url) => url.GetLeftPart(UriPartial.Path);

    /// <summary>The error for "the Hub could not be reached" (no network, DNS, proxy, timeouts).</summary>
    /// <summary>
    /// Whether the host name could not be resolved: offline, no DNS or a mistyped endpoint. Retrying rarely helps and would
    /// keep the user waiting through every backoff, so it fails at once (a cached copy is still used when there is one).
    /// </summary>
    internal static bool IsNameResolutionFailure(Exception error)
    {
        for (Exception? e = error; e is not null; e = e.InnerException)
        {
            if (e is HttpRequestException { HttpRequestError: HttpRequestError.NameResolutionError }
                || e is System.Net.Sockets.SocketException { SocketErrorCode: System.Net.Sockets.SocketError.HostNotFound or System.Net.Sockets.SocketError.TryAgain })
            {
                return true;
            }
        }

        return false;
    }

    private HubUnavailableException Unreachable(HubRequestContext context, Exception cause) =>
        new($"Could not reach the Hub at {_options.Endpoint} for {context.Describe()}: {cause.Message.TrimEnd('.')}. " +
            "Check your network connection, proxy and HF_ENDPOINT; once the files are in the cache, offline mode (HF_HUB_OFFLINE=1) needs no network.",
            cause)
        {
            RepoId = context.RepoId,
        };

    private async Task<HttpResponseMessage> SendFollowingRedirectsAsync(
        HttpMethod method, Uri url, long offset, HubRequestContext context, bool retry, TimeSpan timeout, CancellationToken cancellationToken)
    {
        for (int redirects = 0; ; redirects++)
        {
            HttpResponseMessage response = await SendAsync(method, url, offset, context, retry, timeout, cancellationToken).ConfigureAwait(false);
            if (IsRedirect(response.StatusCode) && response.Headers.Location is { } location)
            {
                response.Dispose();
                if (redirects == MaxRedirects)
                {
                    throw TooManyRedirects(context, url);
                }

                url = location.IsAbsoluteUri ? location : new Uri(url, location);
                continue;
            }

            if (!response.IsSuccessStatusCode)
            {
                using (response)
                {
                    throw await ToExceptionAsync(response, context, url).ConfigureAwait(false);
                }
            }

            return response;
        }
    }

    /// <summary>Sends one request, retrying 408, 429, 5xx and connection failures with backoff when <paramref name="retry"/> is set.</summary>
    private async Task<HttpResponseMessage> SendAsync(
        HttpMethod method, Uri url, long offset, HubRequestContext context, bool retry, TimeSpan timeout, CancellationToken cancellationToken)
    {
        // A redirect may name any scheme; HttpClient would throw NotSupportedException for file:, ftp: and the like.
        if (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps)
        {
            throw new HubIntegrityException(
                $"Refused to fetch {context.Describe()} from '{Redact(url)}': the Hub and its storage hosts are reached over HTTP(S) only, so a redirect elsewhere is not followed. " +
                "Check HF_ENDPOINT and any proxy, and report it to the repository owner if it persists.")
            {
                RepoId = context.RepoId,
                FilePath = context.FilePath,
            };
        }

        int maxAttempts = retry ? _options.MaxRetries + 1 : 1;
        TimeSpan backoff = _options.InitialRetryDelay;
        for (int attempt = 1; ; attempt++)
        {
            using var request = new HttpRequestMessage(method, url);
            // Identity keeps Content-Length the real size and byte ranges meaningful.
            request.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue("identity"));
            if (_options.Token is { } token && IsEndpoint(url))
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            }

            if (offset > 0)
            {
                request.Headers.Range = new RangeHeaderValue(offset, null);
            }

            HttpResponseMessage response;
            using (var timeoutSource = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                timeoutSource.CancelAfter(timeout);
                try
                {
                    response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeoutSource.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (!cancellationToken.IsCancellationRequested && e is HttpRequestException or OperationCanceledException or IOException)
                {
                    Exception cause = e is OperationCanceledException ? new TimeoutException($"No answer within {timeout.TotalSeconds:0.###} s.", e) : e;
                    if (attempt >= maxAttempts || IsNameResolutionFailure(e))
                    {
                        throw Unreachable(context, cause);
                    }

                    HubLog.RetryingError(_logger, method.Method, Redact(url), cause.Message, backoff, attempt, maxAttempts);
                    await Task.Delay(backoff, cancellationToken).ConfigureAwait(false);
                    backoff = NextBackoff(backoff);
                    continue;
                }
            }

            if (!IsRetryable(response.StatusCode) || attempt >= maxAttempts)
            {
                return response;
            }

            TimeSpan? asked = ServerDelay(response);
            if (asked > _options.MaxRetryAfter)
            {
                return response;
            }

            TimeSpan delay = asked ?? backoff;
            HubLog.RetryingStatus(_logger, method.Method, Redact(url), (int)response.StatusCode, delay, attempt, maxAttempts);
            response.Dispose();
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            backoff = NextBackoff(backoff);
        }
    }

    private TimeSpan NextBackoff(TimeSpan current) => TimeSpan.FromTicks(Math.Min(current.Ticks * 2, _options.MaxRetryDelay.Ticks));

    private static bool IsRetryable(HttpStatusCode status) =>
        status is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests or HttpStatusCode.InternalServerError
            or HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout;

    private static bool IsRedirect(HttpStatusCode status) => (int)status is >= 300 and < 400;

    /// <summary>How long the server asked to wait: an exhausted <c>RateLimit</c> window's reset, else <c>Retry-After</c>.</summary>
    internal static TimeSpan? ServerDelay(HttpResponseMessage response)
    {
        if (response.StatusCode == HttpStatusCode.TooManyRequests && Header(response, "RateLimit") is { } rateLimit
            && RateLimitRegex().Match(rateLimit) is { Success: true } match && match.Groups["remaining"].Value == "0")
        {
            return TimeSpan.FromSeconds(int.Parse(match.Groups["reset"].Value, CultureInfo.InvariantCulture));
        }

        RetryConditionHeaderValue? retryAfter = response.Headers.RetryAfter;
        if (retryAfter?.Delta is { } delta)
        {
            return delta;
        }

        if (retryAfter?.Date is { } date)
        {
            TimeSpan wait = date - DateTimeOffset.UtcNow;
            return wait > TimeSpan.Zero ? wait : TimeSpan.Zero;
        }

        return null;
    }

    /// <summary>Turns a failed Hub answer into the exception a user can act on.</summary>
    private async Task<HubException> ToExceptionAsync(HttpResponseMessage response, HubRequestContext context, Uri url)
    {
        HttpStatusCode status = response.StatusCode;
        string? code = Header(response, "X-Error-Code");
        string? serverMessage = Header(response, "X-Error-Message") ?? await BodyErrorAsync(response).ConfigureAwait(false);
        string said = serverMessage is null ? "" : $" The Hub said: \"{serverMessage}\".";
        bool tokenSent = _options.Token is not null && IsEndpoint(url);
        string tokenHelp = TokenHelp(tokenSent);
        string repoPage = $"{RepoNames.EndpointBase(_options.Endpoint)}/{context.RepoId}";

        if (code == "RevisionNotFound")
        {
            return new HubNotFoundException(
                $"Revision '{context.Revision}' of '{context.RepoId}' was not found on {_options.Endpoint}: check the branch, tag or commit name.{said}")
            {
                RepoId = context.RepoId, StatusCode = status, Missing = HubMissingItem.Revision, Revision = context.Revision,
            };
        }

        if (code == "EntryNotFound")
        {
            return new HubNotFoundException($"'{context.FilePath}' does not exist in '{context.RepoId}' at revision '{context.Revision}'.{said}")
            {
                RepoId = context.RepoId, StatusCode = status, Missing = HubMissingItem.File, Revision = context.Revision, FilePath = context.FilePath,
            };
        }

        if (code == "GatedRepo")
        {
            return new HubAuthenticationException(
                $"'{context.RepoId}' is a gated model ({(int)status}): open {repoPage}, accept its conditions while logged in, " +
                $"then use a token of that account. {tokenHelp}{said}")
            {
                RepoId = context.RepoId, StatusCode = status, IsGated = true,
            };
        }

        if (serverMessage == "Access to this resource is disabled.")
        {
            return new HubException($"'{context.RepoId}' has been disabled on the Hub ({(int)status}) and cannot be downloaded.{said}")
            {
                RepoId = context.RepoId, StatusCode = status,
            };
        }

        switch (status)
        {
            case HttpStatusCode.Unauthorized when serverMessage == "Invalid credentials in Authorization header":
                return new HubAuthenticationException(
                    $"The Hub rejected the access token (401, invalid credentials) for {context.Describe()}. " +
                    $"Replace HF_TOKEN (or the token file) with a valid token from {TokenSettingsPage()}.{said}")
                {
                    RepoId = context.RepoId, StatusCode = status,
                };
            case HttpStatusCode.Unauthorized:
                return new HubAuthenticationException(
                    $"'{context.RepoId}' was not found or needs authentication (401). Check the repository id; a private or gated repository " +
                    $"needs a token with access to it. {tokenHelp}{said}")
                {
                    RepoId = context.RepoId, StatusCode = status,
                };
            case HttpStatusCode.Forbidden:
                return new HubAuthenticationException(
                    $"Access to {context.Describe()} is forbidden (403). If the model is gated, request access at {repoPage}; " +
                    $"a fine-grained token needs read access to this repository. {tokenHelp}{said}")
                {
                    RepoId = context.RepoId, StatusCode = status,
                };
            case HttpStatusCode.NotFound when code == "RepoNotFound" || (context.FilePath is null && IsEndpoint(url)):
                return new HubNotFoundException(
                    $"Repository '{context.RepoId}' was not found on {_options.Endpoint}. Check the id (for example '{RepoNames.ExampleRepoId}'); " +
                    $"a private repository needs a token with access to it. {tokenHelp}{said}")
                {
                    RepoId = context.RepoId, StatusCode = status, Missing = HubMissingItem.Repository, Revision = context.Revision,
                };
            case HttpStatusCode.NotFound:
                return new HubNotFoundException($"{context.Describe()} was not found ({Redact(url)} answered 404).{said}")
                {
                    RepoId = context.RepoId, StatusCode = status, Missing = HubMissingItem.File, Revision = context.Revision, FilePath = context.FilePath,
                };
            case HttpStatusCode.TooManyRequests:
                TimeSpan? retryAfter = ServerDelay(response);
                string wait = retryAfter is { } w ? $"wait {Math.Ceiling(w.TotalSeconds):0} s" : "wait a few minutes";
                return new HubRateLimitedException(
                    $"The Hub answered 429 Too Many Requests for {context.Describe()}, retried up to {_options.MaxRetries} times: {wait} and try again. " +
                    $"Requests with a token (HF_TOKEN) get higher limits.{said}")
                {
                    RepoId = context.RepoId, StatusCode = status, RetryAfter = retryAfter,
                };
            case >= HttpStatusCode.InternalServerError or HttpStatusCode.RequestTimeout:
                return new HubUnavailableException(
                    $"The Hub answered {(int)status} {response.ReasonPhrase} for {context.Describe()} ({Redact(url)}), retried up to {_options.MaxRetries} times. " +
                    $"The Hub or a proxy is having trouble: try again later (https://status.huggingface.co).{said}")
                {
                    RepoId = context.RepoId, StatusCode = status,
                };
            default:
                return new HubException($"The Hub answered {(int)status} {response.ReasonPhrase} for {context.Describe()} ({Redact(url)}).{said}")
                {
                    RepoId = context.RepoId, StatusCode = status,
                };
        }
    }

    private string TokenHelp(bool tokenSent) => tokenSent
        ? "The token that was sent has no access to it: check its account and permissions."
        : $"No token was sent: set HF_TOKEN to an access token from {TokenSettingsPage()}, or log in with 'hf auth login' (it writes the token file $HF_HOME/token).";

    private string TokenSettingsPage() => $"{RepoNames.EndpointBase(_options.Endpoint)}/settings/tokens";

    private static HubIntegrityException TooManyRedirects(HubRequestContext context, Uri url) =>
        new($"More than {MaxRedirects} redirects for {context.Describe()} (last: {Redact(url)}).") { RepoId = context.RepoId, FilePath = context.FilePath };

    /// <summary>A short error message from a JSON body (<c>{"error": "..."}</c>), if there is one.</summary>
    private static async Task<string?> BodyErrorAsync(HttpResponseMessage response)
    {
        if (response.Content.Headers.ContentType?.MediaType != "application/json" || response.Content.Headers.ContentLength is not (> 0 and < 4096))
        {
            return null;
        }

        try
        {
            using JsonDocument body = JsonDocument.Parse(await response.Content.ReadAsStringAsync().ConfigureAwait(false));
            return body.RootElement.ValueKind == JsonValueKind.Object && body.RootElement.TryGetProperty("error", out JsonElement error)
                && error.ValueKind == JsonValueKind.String ? error.GetString() : null;
        }
        catch (Exception e) when (e is JsonException or HttpRequestException or IOException)
        {
            return null;
        }
    }

    private static Uri? NextPage(HttpResponseMessage response, Uri current)
    {
        if (!response.Headers.TryGetValues("Link", out IEnumerable<string>? values))
        {
            return null;
        }

        foreach (string value in values)
        {
            foreach (Match link in LinkRegex().Matches(value))
            {
                if (link.Groups["rel"].Value.Split(' ').Contains("next", StringComparer.OrdinalIgnoreCase))
                {
                    return new Uri(current, link.Groups["url"].Value);
                }
            }
        }

        return null;
    }

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out IEnumerable<string>? values) || response.Content.Headers.TryGetValues(name, out values)
            ? values.FirstOrDefault()
            : null;

    private static string? NormalizeEtag(string? etag)
    {
        if (etag is null)
        {
            return null;
        }

        if (etag.StartsWith("W/", StringComparison.Ordinal))
        {
            etag = etag[2..];
        }

        etag = etag.Trim('"');
        return etag.Length == 0 ? null : etag;
    }

    private static long? ParseSize(string? value) =>
        long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out long size) ? size : null;

    private static string LibraryVersion() =>
        typeof(HubTransport).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0";

    [GeneratedRegex(@"r=(?<remaining>\d+).*?t=(?<reset>\d+)")]
    private static partial Regex RateLimitRegex();

    [GeneratedRegex(@"<(?<url>[^>]*)>\s*;\s*rel=""?(?<rel>[^"";,]*)""?")]
    private static partial Regex LinkRegex();
}
