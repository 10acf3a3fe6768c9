using System.Runtime.ExceptionServices;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace StableDiffusion.Hub;

/// <summary>
/// Downloads repositories from the Hugging Face Hub into the cache Python's <c>huggingface_hub</c> uses, so a model
/// downloaded by either is found by the other, and both can download at the same time.
/// </summary>
/// <remarks>
/// <para>
/// Mirrors <c>hf_hub_download</c> (<see cref="DownloadFileAsync"/>) and <c>snapshot_download</c>
/// (<see cref="DownloadSnapshotAsync"/>), each returning a path under <c>{cache}/models--org--name/snapshots/{commit}</c>.
/// For a download that chooses its files from the listing and from files fetched first (as <c>diffusers</c> chooses a
/// pipeline's files from <c>model_index.json</c>), <see cref="GetSnapshotAsync"/> resolves the revision once and lists the
/// files, and the <see cref="HubSnapshot"/> it returns downloads any selection.
/// </para>
/// <para>
/// Files arrive through <c>.incomplete</c> temporary files, resume after dropped connections, and are checked against the
/// size and hash the Hub announces before they are moved into place. When the Hub cannot be reached (or
/// <see cref="HubOptions.Offline"/> is set) a cached snapshot is used, as Python does. The client is thread-safe; create one
/// and reuse it.
/// </para>
/// </remarks>
public sealed class HubClient : IDisposable
{
    /// <summary>The revision used when none is given.</summary>
    public const string DefaultRevision = "main";

    private readonly HubTransport _transport;
    private readonly BlobDownloader _downloader;
    private readonly ILogger _logger;

    /// <summary>Creates a client configured from the environment (<see cref="HubOptions.FromEnvironment()"/>).</summary>
    /// <exception cref="InvalidOperationException">An <c>HF_*</c> environment variable holds an unusable value (the message names it).</exception>
    public HubClient()
        : this(HubOptions.FromEnvironment())
    {
    }

    /// <summary>Creates a client.</summary>
    /// <param name="options">The endpoint, cache, token and network settings; usually <see cref="HubOptions.FromEnvironment()"/>.</param>
    /// <param name="handler">
    /// The HTTP handler to send requests through (a proxy, a test server), or <see langword="null"/> for a default one. It must
    /// not follow redirects itself: the client follows them so that the token never reaches the storage hosts. The caller
    /// keeps ownership of it.
    /// </param>
    /// <param name="logger">Receives progress and retry messages; never the token.</param>
    /// <exception cref="ArgumentException">An option is out of range, or <paramref name="handler"/> follows redirects.</exception>
    public HubClient(HubOptions options, HttpMessageHandler? handler = null, ILogger<HubClient>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (handler is SocketsHttpHandler { AllowAutoRedirect: true } or HttpClientHandler { AllowAutoRedirect: true })
        {
            throw new ArgumentException(
                "The handler must not follow redirects (set AllowAutoRedirect = false): the Hub client follows them itself so that the token is never sent to another host.",
                nameof(handler));
        }

        Options = options;
        _logger = logger ?? (ILogger)NullLogger.Instance;
        _transport = new HubTransport(options, handler, _logger);
        _downloader = new BlobDownloader(_transport, options, _logger);
    }

    /// <summary>The options this client uses.</summary>
    public HubOptions Options { get; }

    /// <summary>Whether <paramref name="repoId"/> is a repository id the Hub accepts: <c>name</c> or <c>namespace/name</c>, as <c>huggingface_hub</c> checks it.</summary>
    /// <param name="repoId">The text to check, such as a command-line argument that may be a repository id or a folder.</param>
    /// <returns><see langword="true"/> for a valid id (which says nothing about whether the repository exists).</returns>
    public static bool IsValidRepoId(string repoId)
    {
        ArgumentNullException.ThrowIfNull(repoId);
        return RepoNames.IsValidRepoId(repoId);
    }

    /// <summary>
    /// Whether <paramref name="path"/> can name a repository file in the cache: a relative <c>/</c>-separated path without
    /// empty, <c>.</c> or <c>..</c> segments, <c>\</c>, <c>:</c> or control characters, so that joined to a folder it
    /// stays inside it. Check paths taken from repository content (a configuration naming other files) with it.
    /// </summary>
    /// <param name="path">The repository path to check.</param>
    /// <returns><see langword="true"/> when the path is safe to request.</returns>
    public static bool IsValidFilePath(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return RepoNames.IsSafeRelativePath(path);
    }

    /// <summary>
    /// Resolves a revision to its commit and lists the repository's files there, from the Hub; or, offline or when the Hub
    /// cannot be used and the snapshot is cached, from the cache (<c>refs/</c> and the cached listing). Downloads nothing.
    /// </summary>
    /// <param name="repoId">The repository (<c>org/name</c>).</param>
    /// <param name="revision">A branch, tag or commit; <see langword="null"/> for <c>main</c>.</param>
    /// <param name="progress">Receives the bytes the snapshot's downloads receive, over all of them.</param>
    /// <param name="cancellationToken">Cancels the requests.</param>
    /// <returns>The snapshot, to download files from.</returns>
    /// <exception cref="ArgumentException"><paramref name="repoId"/> or <paramref name="revision"/> is not valid.</exception>
    /// <exception cref="HubException">The Hub could not be asked and the cache does not know the revision; the derived type and message say why and what to do.</exception>
    public async Task<HubSnapshot> GetSnapshotAsync(
        string repoId, string? revision = null, IProgress<HubDownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        revision = ValidRevision(repoId, revision);
        var cache = new RepoCache(Options.CacheDirectory, repoId, _logger);
        var tracker = new ProgressTracker(repoId, progress);
        // A commit never moves: no need to ask the Hub what it points to.
        string? commit = RepoNames.IsCommitHash(revision) ? revision : cache.ReadRef(revision);
        if (Options.Offline)
        {
            if (commit is null)
            {
                throw OfflineMiss(cache, revision, [RefName(revision)]);
            }

            HubLog.UsingCacheOffline(_logger, repoId, revision, commit);
            return new HubSnapshot(this, repoId, revision, commit, cache, tracker, cache.ReadTree(commit), isCacheOnly: true, cacheReason: null);
        }

        // With a cached snapshot to fall back on, fail fast instead of retrying (as huggingface_hub does).
        bool snapshotCached = commit is not null && Directory.Exists(cache.SnapshotFolder(commit));
        var context = new HubRequestContext(repoId, revision);
        try
        {
            if (!RepoNames.IsCommitHash(revision))
            {
                commit = await ResolveRevisionAsync(cache, context, retry: !snapshotCached, cancellationToken).ConfigureAwait(false);
                snapshotCached = Directory.Exists(cache.SnapshotFolder(commit));
            }

            IReadOnlyDictionary<string, RepoFileEntry> listing = await ListFilesAsync(cache, context, commit!, retry: !snapshotCached, cancellationToken).ConfigureAwait(false);
            return new HubSnapshot(this, repoId, revision, commit!, cache, tracker, listing, isCacheOnly: false, cacheReason: null);
        }
        catch (HubException e) when (snapshotCached && CanFallBackToCache(e))
        {
            HubLog.UsingCacheAfterError(_logger, repoId, revision, commit!, e.Message);
            return new HubSnapshot(this, repoId, revision, commit!, cache, tracker, cache.ReadTree(commit!), isCacheOnly: true, cacheReason: e);
        }
    }

    /// <summary>
    /// Downloads the files of a repository revision, like Python's <c>snapshot_download</c>.
    /// </summary>
    /// <param name="repoId">The repository (<c>org/name</c>).</param>
    /// <param name="revision">A branch, tag or commit; <see langword="null"/> for <c>main</c>.</param>
    /// <param name="allowPatterns">
    /// Download only files matching one of these patterns (<c>huggingface_hub</c>'s <c>allow_patterns</c>: case-sensitive,
    /// <c>*</c> also matches <c>/</c>, a pattern ending in <c>/</c> matches a folder); <see langword="null"/> for all files.
    /// </param>
    /// <param name="progress">Receives the bytes downloaded so far.</param>
    /// <param name="cancellationToken">Cancels the download; finished files stay in the cache, the file in progress is discarded.</param>
    /// <returns>The snapshot folder, <c>…/snapshots/{commit}</c>.</returns>
    /// <exception cref="ArgumentException"><paramref name="repoId"/> or <paramref name="revision"/> is not valid.</exception>
    /// <exception cref="HubException">The download failed; the derived type and message say why and what to do.</exception>
    public async Task<string> DownloadSnapshotAsync(
        string repoId,
        string? revision = null,
        IEnumerable<string>? allowPatterns = null,
        IProgress<HubDownloadProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        GlobFilter? filter = allowPatterns is null ? null : new GlobFilter(allowPatterns);
        HubSnapshot snapshot = await GetSnapshotAsync(repoId, revision, progress, cancellationToken).ConfigureAwait(false);
        if (snapshot.IsCacheOnly)
        {
            // Without a cached listing, what the snapshot should hold cannot be known: the folder itself must be there.
            ThrowIfIncomplete(snapshot, !Directory.Exists(snapshot.Folder)
                ? [SnapshotName(snapshot.Commit)]
                : MissingFromSnapshot(snapshot, snapshot.Files?.Where(path => filter?.IsMatch(path) ?? true) ?? []));
            return snapshot.Folder;
        }

        List<RepoFileEntry> selected = [.. snapshot.Listing!.Values.Where(entry => filter?.IsMatch(entry.Path) ?? true).OrderBy(entry => entry.Path, StringComparer.Ordinal)];
        await DownloadAsync(snapshot, selected, cancellationToken).ConfigureAwait(false);
        Directory.CreateDirectory(snapshot.Folder);
        HubLog.SnapshotReady(_logger, repoId, snapshot.Commit, snapshot.Folder, selected.Count, snapshot.BytesDownloaded);
        return snapshot.Folder;
    }

    /// <summary>Downloads one file of a repository, like Python's <c>hf_hub_download</c>.</summary>
    /// <param name="repoId">The repository (<c>org/name</c>).</param>
    /// <param name="filePath">The file's path in the repository, <c>/</c>-separated (<c>unet/model.onnx</c>).</param>
    /// <param name="revision">A branch, tag or commit; <see langword="null"/> for <c>main</c>.</param>
    /// <param name="progress">Receives the bytes downloaded so far.</param>
    /// <param name="cancellationToken">Cancels the download; a partial file is discarded.</param>
    /// <returns>The file's path in the snapshot folder.</returns>
    /// <exception cref="ArgumentException">An argument is not valid.</exception>
    /// <exception cref="HubException">The download failed; the derived type and message say why and what to do.</exception>
    public async Task<string> DownloadFileAsync(
        string repoId, string filePath, string? revision = null, IProgress<HubDownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        revision = ValidRevision(repoId, revision);
        ArgumentException.ThrowIfNullOrEmpty(filePath);
        if (!RepoNames.IsSafeRelativePath(filePath))
        {
            throw new ArgumentException($"'{filePath}' is not a repository file path: use a relative '/'-separated path without '..', '.', '\\' or ':'.", nameof(filePath));
        }

        var cache = new RepoCache(Options.CacheDirectory, repoId, _logger);
        bool isCommit = RepoNames.IsCommitHash(revision);
        string? cachedCommit = isCommit ? revision : cache.ReadRef(revision);
        RepoCache.CachedFile? cached = cachedCommit is null ? null : cache.FindCachedFile(cachedCommit, filePath);
        if (cached is not null && (isCommit || Options.Offline))
        {
            return cached.Path;
        }

        if (Options.Offline)
        {
            throw OfflineMiss(cache, revision, cachedCommit is null ? [RefName(revision)] : [filePath]);
        }

        var context = new HubRequestContext(repoId, revision, filePath);
        HubFileMetadata metadata;
        try
        {
            // With a cached copy to fall back on, fail fast instead of retrying (as huggingface_hub does).
            metadata = await _transport.HeadFileAsync(RepoNames.ResolveUrl(Options.Endpoint, repoId, revision, filePath), context, retry: cached is null, cancellationToken)
                .ConfigureAwait(false);
        }
        catch (HubException e) when (cached is not null && CanFallBackToCache(e))
        {
            HubLog.UsingCacheAfterError(_logger, repoId, revision, cachedCommit!, e.Message);
            return cached.Path;
        }

        string commit = ValidCommit(metadata.Commit, context);
        cache.WriteRef(revision, commit);
        var snapshot = new HubSnapshot(this, repoId, revision, commit, cache, new ProgressTracker(repoId, progress), listing: null, isCacheOnly: false, cacheReason: null);
        var entry = new RepoFileEntry(filePath, metadata.Size, metadata.Etag);
        return await EnsureFileAsync(snapshot, entry, announced: false, cancellationToken, metadata).ConfigureAwait(false);
    }

    /// <summary>Releases the HTTP connections (not a handler passed to the constructor).</summary>
    public void Dispose() => _transport.Dispose();

    /// <summary>Asks the Hub which commit a branch or tag points to, and records it in <c>refs/</c>.</summary>
    private async Task<string> ResolveRevisionAsync(RepoCache cache, HubRequestContext context, bool retry, CancellationToken cancellationToken)
    {
        HubLog.ResolvingRevision(_logger, context.RepoId, context.Revision);
        (JsonDocument document, _) = await _transport.GetJsonAsync(
            RepoNames.RevisionUrl(Options.Endpoint, context.RepoId, context.Revision), context, retry, cancellationToken).ConfigureAwait(false);
        string? sha;
        using (document)
        {
            sha = document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("sha", out JsonElement value)
                && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
        }

        string commit = ValidCommit(sha, context);
        HubLog.ResolvedRevision(_logger, context.RepoId, context.Revision, commit);
        cache.WriteRef(context.Revision, commit);
        return commit;
    }

    /// <summary>The files at <paramref name="commit"/>: the cached listing (ours or Python's) or the Hub's tree API, page by page.</summary>
    private async Task<IReadOnlyDictionary<string, RepoFileEntry>> ListFilesAsync(
        RepoCache cache, HubRequestContext context, string commit, bool retry, CancellationToken cancellationToken)
    {
        if (cache.ReadTree(commit) is { } cached)
        {
            HubLog.Listed(_logger, context.RepoId, commit, cached.Count, "cache");
            return cached;
        }

        var entries = new Dictionary<string, RepoFileEntry>(StringComparer.Ordinal);
        for (Uri? page = RepoNames.TreeUrl(Options.Endpoint, context.RepoId, commit); page is not null;)
        {
            (JsonDocument document, Uri? next) = await _transport.GetJsonAsync(page, context, retry, cancellationToken).ConfigureAwait(false);
            using (document)
            {
                try
                {
                    foreach (JsonElement item in document.RootElement.EnumerateArray())
                    {
                        if (RepoFileEntry.FromTreeApi(item) is { } entry)
                        {
                            entries[entry.Path] = entry;
                        }
                    }
                }
                catch (Exception e) when (e is JsonException or InvalidOperationException or KeyNotFoundException or FormatException)
                {
                    throw new HubException($"The Hub's file listing of {context.Describe()} is not in the expected form ({HubTransport.Redact(page)}): {e.Message}", e)
                    {
                        RepoId = context.RepoId,
                    };
                }
            }

            page = next;
        }

        HubLog.Listed(_logger, context.RepoId, commit, entries.Count, "Hub");
        cache.WriteTree(commit, entries);
        return entries;
    }

    /// <summary>
    /// <see cref="HubSnapshot.DownloadFilesAsync"/>: every path is checked before anything is downloaded; a cache-only
    /// snapshot names all the files it lacks at once.
    /// </summary>
    internal async Task EnsureFilesAsync(HubSnapshot snapshot, IReadOnlyList<string> paths, CancellationToken cancellationToken)
    {
        foreach (string path in paths)
        {
            RepoNames.ValidateFilePath(snapshot.RepoId, path, "requested");
        }

        if (snapshot.IsCacheOnly)
        {
            ThrowIfIncomplete(snapshot, paths.Count > 0 && !Directory.Exists(snapshot.Folder) ? [SnapshotName(snapshot.Commit)] : MissingFromSnapshot(snapshot, paths));
            return;
        }

        var entries = new List<RepoFileEntry>(paths.Count);
        foreach (string path in paths)
        {
            if (!snapshot.Listing!.TryGetValue(path, out RepoFileEntry? entry))
            {
                throw new HubNotFoundException($"'{snapshot.RepoId}' at revision '{snapshot.Revision}' (commit {snapshot.Commit}) has no file '{path}'.")
                {
                    RepoId = snapshot.RepoId,
                    Revision = snapshot.Revision,
                    FilePath = path,
                    Missing = HubMissingItem.File,
                };
            }

            entries.Add(entry);
        }

        await DownloadAsync(snapshot, entries, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Downloads the files missing from the snapshot, several at a time; every path is checked before anything is written.</summary>
    private async Task DownloadAsync(HubSnapshot snapshot, IReadOnlyList<RepoFileEntry> entries, CancellationToken cancellationToken)
    {
        foreach (RepoFileEntry entry in entries)
        {
            RepoNames.ValidateFilePath(snapshot.RepoId, entry.Path, "listed by the Hub");
        }

        // Announce what is to download up front, so that progress totals are known from the first report.
        var announced = new HashSet<string>(StringComparer.Ordinal);
        foreach (RepoFileEntry entry in entries)
        {
            if (snapshot.Cache.FindCachedFile(snapshot.Commit, entry.Path) is null)
            {
                announced.Add(entry.Path);
                snapshot.Tracker.AddFile(entry.ContentSize);
            }
        }

        await Parallel.ForEachAsync(
            entries,
            new ParallelOptions { MaxDegreeOfParallelism = Options.MaxConcurrentDownloads, CancellationToken = cancellationToken },
            async (entry, token) => await EnsureFileAsync(snapshot, entry, announced.Contains(entry.Path), token).ConfigureAwait(false)).ConfigureAwait(false);
    }

    /// <summary>
    /// Makes <paramref name="entry"/> present in the snapshot, as <c>hf_hub_download</c> does at a pinned commit: the cached
    /// file, else a link to a cached blob, else a download under the blob's lock.
    /// </summary>
    private async Task<string> EnsureFileAsync(HubSnapshot snapshot, RepoFileEntry entry, bool announced, CancellationToken cancellationToken, HubFileMetadata? metadata = null)
    {
        RepoCache cache = snapshot.Cache;
        string path = entry.Path;
        RepoCache.CachedFile? cached = cache.FindCachedFile(snapshot.Commit, path);
        if (cached is not null)
        {
            if (cached.Length == entry.ContentSize)
            {
                HubLog.CacheHit(_logger, snapshot.RepoId, path);
                return cached.Path;
            }

            HubLog.CachedFileWrongSize(_logger, path, cached.Length, entry.ContentSize);
        }

        var context = new HubRequestContext(snapshot.RepoId, snapshot.Revision, path);
        metadata ??= await _transport.HeadFileAsync(RepoNames.ResolveUrl(Options.Endpoint, snapshot.RepoId, snapshot.Commit, path), context, retry: true, cancellationToken)
            .ConfigureAwait(false);
        ValidateEtag(metadata.Etag, context);
        string blob = cache.BlobPath(metadata.Etag);
        cache.EnsureCacheDirTag();
        using (await CacheFileLock.AcquireAsync(cache.LockPath(metadata.Etag), path, _logger, cancellationToken).ConfigureAwait(false))
        {
            if (cached is not null)
            {
                cache.Evict(snapshot.Commit, path);
            }

            bool newBlob = false;
            var existing = new FileInfo(blob);
            if (!existing.Exists || existing.Length != metadata.Size)
            {
                if (!announced)
                {
                    snapshot.Tracker.AddFile(metadata.Size);
                }

                HubLog.DownloadingFile(_logger, snapshot.RepoId, path, metadata.Size);
                Directory.CreateDirectory(cache.BlobsFolder);
                string temporary = cache.IncompletePath(metadata.Etag);
                try
                {
                    await _downloader.DownloadAsync(metadata, temporary, context, delta => snapshot.Tracker.OnBytes(path, delta), cancellationToken).ConfigureAwait(false);
                    File.Move(temporary, blob, overwrite: true);
                }
                finally
                {
                    RepoCache.DeleteIfPresent(temporary);
                }

                newBlob = true;
                HubLog.DownloadedFile(_logger, snapshot.RepoId, path, metadata.Size);
            }
            else if (announced)
            {
                // Another process (or a snapshot sharing the blob) brought it: count it as done.
                snapshot.Tracker.OnBytes(path, metadata.Size);
            }

            cache.LinkIntoSnapshot(blob, snapshot.Commit, path, newBlob, Options.UseSymbolicLinks);
            if (newBlob || announced)
            {
                snapshot.Tracker.OnFileCompleted(path);
            }
        }

        return cache.PointerPath(snapshot.Commit, path);
    }

    private static List<string> MissingFromSnapshot(HubSnapshot snapshot, IEnumerable<string> paths)
    {
        var missing = new List<string>();
        foreach (string path in paths)
        {
            RepoNames.ValidateFilePath(snapshot.RepoId, path, "listed in the cache");
            if (snapshot.Cache.FindCachedFile(snapshot.Commit, path) is null)
            {
                missing.Add(path);
            }
        }

        return missing;
    }

    /// <summary>Throws when a cache-only snapshot lacks files: offline, naming them; after a Hub failure, that failure, extended.</summary>
    private void ThrowIfIncomplete(HubSnapshot snapshot, List<string> missing)
    {
        if (missing.Count == 0)
        {
            return;
        }

        if (snapshot.CacheReason is null)
        {
            throw OfflineMiss(snapshot.Cache, snapshot.Revision, missing, snapshot.Commit);
        }

        HubException cause = snapshot.CacheReason;
        if (cause is HubAuthenticationException or HubNotFoundException)
        {
            ExceptionDispatchInfo.Throw(cause);
        }

        string message = $"{cause.Message} The cached snapshot {snapshot.Commit} of '{snapshot.RepoId}' lacks {Describe(missing)}.";
        throw cause switch
        {
            HubRateLimitedException limited => new HubRateLimitedException(message, cause) { RepoId = snapshot.RepoId, StatusCode = cause.StatusCode, RetryAfter = limited.RetryAfter },
            _ => new HubUnavailableException(message, cause) { RepoId = snapshot.RepoId, StatusCode = cause.StatusCode },
        };
    }

    private HubOfflineException OfflineMiss(RepoCache cache, string revision, List<string> missing, string? commit = null) =>
        new($"Offline mode is on (HF_HUB_OFFLINE or HubOptions.Offline) and '{cache.RepoId}' at revision '{revision}'" +
            (commit is null ? "" : $" (commit {commit})") + $" is not (fully) in the cache '{cache.StorageFolder}': missing {Describe(missing)}. " +
            "Download it once with network access (HF_HUB_OFFLINE unset), or point HF_HUB_CACHE at a cache that has it.")
        {
            RepoId = cache.RepoId,
            MissingPaths = missing,
        };

    private static string Describe(List<string> missing) =>
        missing.Count <= 10 ? string.Join(", ", missing) : string.Join(", ", missing.Take(10)) + $" and {missing.Count - 10} more";

    /// <summary>Checks <paramref name="repoId"/> and the revision, and returns the revision (<c>main</c> for <see langword="null"/>).</summary>
    private static string ValidRevision(string repoId, string? revision)
    {
        RepoNames.ValidateRepoId(repoId);
        revision ??= DefaultRevision;
        RepoNames.ValidateRevision(revision);
        return revision;
    }

    private static string RefName(string revision) => "refs/" + revision;

    private static string SnapshotName(string commit) => $"snapshots/{commit}/";

    /// <summary>
    /// Whether a cached snapshot may stand in after <paramref name="error"/>: yes for network trouble, 5xx, 429, 401/403 and a
    /// missing repository (as huggingface_hub), no for a revision or file the Hub says does not exist, or refused content.
    /// </summary>
    private static bool CanFallBackToCache(HubException error) =>
        error is not (HubIntegrityException or HubNotFoundException { Missing: HubMissingItem.Revision or HubMissingItem.File });

    private static string ValidCommit(string? commit, HubRequestContext context) =>
        commit is not null && RepoNames.IsCommitHash(commit)
            ? commit
            : throw new HubException($"The Hub did not give a commit hash for {context.Describe()} (got '{commit}'). Check HF_ENDPOINT and any proxy in between.")
            {
                RepoId = context.RepoId,
            };

    private static void ValidateEtag(string etag, HubRequestContext context)
    {
        if (!RepoNames.IsSafeBlobName(etag))
        {
            throw new HubIntegrityException($"Refused the ETag '{etag}' the Hub sent for {context.Describe()}: it cannot name a cache file.")
            {
                RepoId = context.RepoId,
                FilePath = context.FilePath,
            };
        }
    }
}
