using System.Globalization;
using System.Text;

namespace StableDiffusion.Hub;

/// <summary>
/// Where and how <see cref="HubClient"/> talks to the Hugging Face Hub and keeps its cache.
/// </summary>
/// <remarks>
/// <para>
/// <see cref="FromEnvironment()"/> reads the same environment variables as Python's <c>huggingface_hub</c>
/// (<c>HF_ENDPOINT</c>, <c>HF_HOME</c>, <c>HF_HUB_CACHE</c>, <c>HF_HUB_OFFLINE</c>, <c>HF_TOKEN</c>, the token file,
/// <c>HF_HUB_ETAG_TIMEOUT</c>, <c>HF_HUB_DOWNLOAD_TIMEOUT</c>, <c>HF_HUB_DISABLE_SYMLINKS</c>,
/// <c>HF_HUB_DISABLE_IMPLICIT_TOKEN</c>), so both share one cache and one login. Adjust the result with
/// <c>with</c>: <c>HubOptions.FromEnvironment() with { Offline = true }</c>.
/// </para>
/// <para>
/// A plain <c>new HubOptions()</c> ignores the environment: the public Hub, the default cache folder, no token.
/// </para>
/// </remarks>
public sealed record HubOptions
{
    /// <summary>The public Hub, <c>https://huggingface.co</c>.</summary>
    public static readonly Uri DefaultEndpoint = new("https://huggingface.co");

    /// <summary>The Hub (or mirror) to download from. Default: <see cref="DefaultEndpoint"/>; <c>HF_ENDPOINT</c>.</summary>
    /// <remarks>The token is sent to this scheme, host and port only, never to the storage hosts it redirects to.</remarks>
    public Uri Endpoint { get; init; } = DefaultEndpoint;

    /// <summary>
    /// The cache folder shared with Python (<c>models--org--name/blobs|snapshots|refs</c> live under it).
    /// Default: <c>~/.cache/huggingface/hub</c>; <c>HF_HUB_CACHE</c>, else <c>$HF_HOME/hub</c>.
    /// </summary>
    public string CacheDirectory { get; init; } = DefaultCacheDirectory(static _ => null);

    /// <summary>
    /// The access token for private and gated repositories, or <see langword="null"/> for anonymous access.
    /// <c>HF_TOKEN</c>, else the token file <c>$HF_HOME/token</c> (written by <c>hf auth login</c>).
    /// </summary>
    /// <remarks>Never logged and left out of <see cref="ToString"/>.</remarks>
    public string? Token { get; init; }

    /// <summary>
    /// Resolve everything from the cache, without any network request (<c>HF_HUB_OFFLINE=1</c>).
    /// A missing file then raises <see cref="HubOfflineException"/> naming it.
    /// </summary>
    public bool Offline { get; init; }

    /// <summary>
    /// How long to wait for the Hub to answer a metadata request (revision, listing, file headers).
    /// Default 10 s; <c>HF_HUB_ETAG_TIMEOUT</c> (seconds).
    /// </summary>
    public TimeSpan MetadataTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long a file download may wait for the next bytes before the connection counts as dropped (it is then resumed).
    /// Default 10 s; <c>HF_HUB_DOWNLOAD_TIMEOUT</c> (seconds).
    /// </summary>
    public TimeSpan DownloadTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How many times a request answered with 408, 429 or 5xx, or failing to connect, is retried before giving up. Default 5.
    /// </summary>
    public int MaxRetries { get; init; } = 5;

    /// <summary>The first wait between retries; it doubles up to <see cref="MaxRetryDelay"/>. Default 1 s.</summary>
    public TimeSpan InitialRetryDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest wait between two retries, unless the Hub asks for more with <c>Retry-After</c>. Default 8 s.</summary>
    public TimeSpan MaxRetryDelay { get; init; } = TimeSpan.FromSeconds(8);

    /// <summary>
    /// The longest <c>Retry-After</c> (or rate-limit reset) honoured; a longer one ends the retries with
    /// <see cref="HubRateLimitedException"/> at once. Default 5 minutes.
    /// </summary>
    public TimeSpan MaxRetryAfter { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How many times a download interrupted mid-file resumes with an HTTP range request; the count restarts whenever
    /// bytes arrive. Default 5.
    /// </summary>
    public int MaxResumeAttempts { get; init; } = 5;

    /// <summary>The wait before resuming an interrupted download. Default 1 s.</summary>
    public TimeSpan ResumeDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How many files download at the same time. Default 8, as in <c>huggingface_hub</c>.</summary>
    public int MaxConcurrentDownloads { get; init; } = 8;

    /// <summary>
    /// Link snapshot files to their blob with relative symbolic links, as <c>huggingface_hub</c> does. When <see langword="false"/>
    /// (<c>HF_HUB_DISABLE_SYMLINKS=1</c>), or where the file system refuses links, files are moved or copied instead. Default <see langword="true"/>.
    /// </summary>
    public bool UseSymbolicLinks { get; init; } = true;

    /// <summary>Reads the options from the process environment the way <c>huggingface_hub</c> does.</summary>
    /// <returns>Options matching what a Python process started with the same environment would use.</returns>
    /// <exception cref="InvalidOperationException">An environment variable holds a value that cannot be used (the message names it).</exception>
    public static HubOptions FromEnvironment() => FromEnvironment(Environment.GetEnvironmentVariable);

    /// <summary>Reads the options through <paramref name="getVariable"/> (testable form of <see cref="FromEnvironment()"/>).</summary>
    internal static HubOptions FromEnvironment(Func<string, string?> getVariable)
    {
        string home = HfHome(getVariable);
        string? tokenPath = NonEmpty(getVariable("HF_TOKEN_PATH")) is { } path ? ExpandPath(path, getVariable) : Path.Combine(home, "token");
        bool implicitTokenDisabled = IsTrue(getVariable("HF_HUB_DISABLE_IMPLICIT_TOKEN"));

        return new HubOptions
        {
            Endpoint = ParseEndpoint(getVariable("HF_ENDPOINT")),
            CacheDirectory = DefaultCacheDirectory(getVariable),
            Token = implicitTokenDisabled ? null : CleanToken(NonEmpty(getVariable("HF_TOKEN")) ?? getVariable("HUGGING_FACE_HUB_TOKEN")) ?? ReadTokenFile(tokenPath),
            // As in Python, a non-empty HF_HUB_OFFLINE wins, even when it says false.
            Offline = IsTrue(NonEmpty(getVariable("HF_HUB_OFFLINE")) ?? getVariable("TRANSFORMERS_OFFLINE")),
            MetadataTimeout = Seconds(getVariable, "HF_HUB_ETAG_TIMEOUT") ?? TimeSpan.FromSeconds(10),
            DownloadTimeout = Seconds(getVariable, "HF_HUB_DOWNLOAD_TIMEOUT") ?? TimeSpan.FromSeconds(10),
            UseSymbolicLinks = !IsTrue(getVariable("HF_HUB_DISABLE_SYMLINKS")),
        };
    }

    /// <summary>Checks the values before a client uses them.</summary>
    internal void Validate()
    {
        if (!Endpoint.IsAbsoluteUri || (Endpoint.Scheme != Uri.UriSchemeHttp && Endpoint.Scheme != Uri.UriSchemeHttps))
        {
            throw new ArgumentException($"HubOptions.Endpoint must be an absolute http or https URL, not '{Endpoint}'.", "options");
        }

        if (string.IsNullOrWhiteSpace(CacheDirectory))
        {
            throw new ArgumentException("HubOptions.CacheDirectory must name a folder.", "options");
        }

        RequirePositive(MetadataTimeout, nameof(MetadataTimeout));
        RequirePositive(DownloadTimeout, nameof(DownloadTimeout));
        RequireNotNegative(InitialRetryDelay, nameof(InitialRetryDelay));
        RequireNotNegative(MaxRetryDelay, nameof(MaxRetryDelay));
        RequireNotNegative(MaxRetryAfter, nameof(MaxRetryAfter));
        RequireNotNegative(ResumeDelay, nameof(ResumeDelay));
        if (MaxRetries < 0 || MaxResumeAttempts < 0 || MaxConcurrentDownloads < 1)
        {
            throw new ArgumentException(
                $"HubOptions: MaxRetries ({MaxRetries}) and MaxResumeAttempts ({MaxResumeAttempts}) must be 0 or more, MaxConcurrentDownloads ({MaxConcurrentDownloads}) 1 or more.",
                "options");
        }
    }

    /// <summary>Prints the options with the token masked, so that logging them never leaks it.</summary>
    private bool PrintMembers(StringBuilder builder)
    {
        builder.Append(CultureInfo.InvariantCulture, $"Endpoint = {Endpoint}, CacheDirectory = {CacheDirectory}, Token = {(Token is null ? "(none)" : "***")}, ");
        builder.Append(CultureInfo.InvariantCulture, $"Offline = {Offline}, MetadataTimeout = {MetadataTimeout}, DownloadTimeout = {DownloadTimeout}, ");
        builder.Append(CultureInfo.InvariantCulture, $"MaxRetries = {MaxRetries}, InitialRetryDelay = {InitialRetryDelay}, MaxRetryDelay = {MaxRetryDelay}, MaxRetryAfter = {MaxRetryAfter}, ");
        builder.Append(CultureInfo.InvariantCulture, $"MaxResumeAttempts = {MaxResumeAttempts}, ResumeDelay = {ResumeDelay}, MaxConcurrentDownloads = {MaxConcurrentDownloads}, UseSymbolicLinks = {UseSymbolicLinks}");
        return true;
    }

    private static string HfHome(Func<string, string?> getVariable)
    {
        if (NonEmpty(getVariable("HF_HOME")) is { } hfHome)
        {
            return ExpandPath(hfHome, getVariable);
        }

        string cacheHome = NonEmpty(getVariable("XDG_CACHE_HOME")) ?? Path.Combine(UserHome(getVariable), ".cache");
        return ExpandPath(Path.Combine(cacheHome, "huggingface"), getVariable);
    }

    private static string DefaultCacheDirectory(Func<string, string?> getVariable)
    {
        string? configured = NonEmpty(getVariable("HF_HUB_CACHE")) ?? NonEmpty(getVariable("HUGGINGFACE_HUB_CACHE"));
        return configured is null ? Path.Combine(HfHome(getVariable), "hub") : ExpandPath(configured, getVariable);
    }

    private static Uri ParseEndpoint(string? value)
    {
        if (NonEmpty(value) is not { } text)
        {
            return DefaultEndpoint;
        }

        text = text.TrimEnd('/');
        if (!Uri.TryCreate(text, UriKind.Absolute, out Uri? endpoint) || (endpoint.Scheme != Uri.UriSchemeHttp && endpoint.Scheme != Uri.UriSchemeHttps))
        {
            throw new InvalidOperationException($"HF_ENDPOINT must be an absolute http or https URL such as https://huggingface.co, not '{value}'.");
        }

        return endpoint;
    }

    private static TimeSpan? Seconds(Func<string, string?> getVariable, string name)
    {
        if (NonEmpty(getVariable(name)) is not { } text)
        {
            return null;
        }

        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int seconds) || seconds <= 0)
        {
            throw new InvalidOperationException($"{name} must be a whole number of seconds greater than 0, not '{text}'.");
        }

        return TimeSpan.FromSeconds(seconds);
    }

    private static string? ReadTokenFile(string path)
    {
        try
        {
            return File.Exists(path) ? CleanToken(File.ReadAllText(path)) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static string? CleanToken(string? token) =>
        token is null ? null : NonEmpty(token.Replace("\r", "", StringComparison.Ordinal).Replace("\n", "", StringComparison.Ordinal).Trim());

    /// <summary>Python's truthy environment values: 1, ON, YES, TRUE in any case.</summary>
    private static bool IsTrue(string? value) =>
        value is not null && (value.Equals("1", StringComparison.Ordinal) || value.Equals("ON", StringComparison.OrdinalIgnoreCase)
            || value.Equals("YES", StringComparison.OrdinalIgnoreCase) || value.Equals("TRUE", StringComparison.OrdinalIgnoreCase));

    private static string? NonEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;

    private static string UserHome(Func<string, string?> getVariable) =>
        NonEmpty(getVariable(OperatingSystem.IsWindows() ? "USERPROFILE" : "HOME")) ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);

    /// <summary>Python's <c>expandvars(expanduser(path))</c>: a leading <c>~</c>, then <c>$NAME</c> and <c>${NAME}</c> (and <c>%NAME%</c> on Windows).</summary>
    internal static string ExpandPath(string path, Func<string, string?> getVariable)
    {
        if (path == "~" || path.StartsWith("~/", StringComparison.Ordinal) || (OperatingSystem.IsWindows() && path.StartsWith("~\\", StringComparison.Ordinal)))
        {
            path = UserHome(getVariable) + path[1..];
        }

        var expanded = new StringBuilder(path.Length);
        for (int i = 0; i < path.Length; i++)
        {
            char c = path[i];
            if (c == '$' && TryReadVariableName(path, i + 1, out string name, out int end) && getVariable(name) is { } value)
            {
                expanded.Append(value);
                i = end - 1;
            }
            else if (c == '%' && OperatingSystem.IsWindows() && path.IndexOf('%', i + 1) is int close and > 0
                && getVariable(path[(i + 1)..close]) is { } windowsValue)
            {
                expanded.Append(windowsValue);
                i = close;
            }
            else
            {
                expanded.Append(c);
            }
        }

        return expanded.ToString();
    }

    private static bool TryReadVariableName(string text, int start, out string name, out int end)
    {
        if (start < text.Length && text[start] == '{')
        {
            int close = text.IndexOf('}', start + 1);
            name = close > start + 1 ? text[(start + 1)..close] : "";
            end = close + 1;
            return name.Length > 0;
        }

        end = start;
        while (end < text.Length && (char.IsAsciiLetterOrDigit(text[end]) || text[end] == '_'))
        {
            end++;
        }

        name = text[start..end];
        return name.Length > 0;
    }

    private static void RequirePositive(TimeSpan value, string name)
    {
        if (value <= TimeSpan.Zero)
        {
            throw new ArgumentException($"HubOptions.{name} must be greater than zero, not {value}.", "options");
        }
    }

    private static void RequireNotNegative(TimeSpan value, string name)
    {
        if (value < TimeSpan.Zero)
        {
            throw new ArgumentException($"HubOptions.{name} must not be negative, not {value}.", "options");
        }
    }
}
