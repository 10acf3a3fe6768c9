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
/// (<see cref="DownloadSnapshotAsync"/>); <see cref="DownloadStableDiffusionAsync"/> downloads just what a Stable Diffusion
/// ONNX pipeline loads. Each returns a path under <c>{cache}/models--org--name/snapshots/{commit}</c>.
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
    /// <summary>The default Stable Diffusion model: the ONNX export of Stable Diffusion v1.5.</summary>
    public const string DefaultModelId = "onnx-community/stable-diffusion-v1-5-ONNX";

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

    /// <summary>
    /// Downloads the files of a diffusers Stable Diffusion ONNX repository that a pipeline loads, and nothing else:
    /// <c>model_index.json</c>, the configs and tokenizer files of the components it names, each component's
    /// <c>model.onnx</c>, and the external weight files those graphs reference (such as <c>unet/weights.pb</c>).
    /// </summary>
    /// <param name="repoId">The repository, for example <see cref="DefaultModelId"/>.</param>
    /// <param name="revision">A branch, tag or commit; <see langword="null"/> for <c>main</c>.</param>
    /// <param name="progress">Receives the bytes downloaded so far.</param>
    /// <param name="cancellationToken">Cancels the download; finished files stay in the cache, the file in progress is discarded.</param>
    /// <returns>The snapshot folder (<c>…/snapshots/{commit}</c>) to load the pipeline from.</returns>
    /// <exception cref="ArgumentException"><paramref name="repoId"/> or <paramref name="revision"/> is not valid.</exception>
    /// <exception cref="HubException">The download failed; the derived type and message say why and what to do.</exception>
    public async Task<string> DownloadStableDiffusionAsync(
        string repoId, string? revision = null, IProgress<HubDownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        Session session = await OpenSessionAsync(repoId, revision, progress, cancellationToken).ConfigureAwait(false);
        if (session.Tree is not { } tree)
        {
            ThrowIfIncomplete(session, FindMissingStableDiffusionFiles(session));
            return session.SnapshotFolder;
        }

        if (!tree.TryGetValue(StableDiffusionFiles.ModelIndex, out RepoFileEntry? modelIndexEntry))
        {
            throw new HubNotFoundException(
                $"'{repoId}' at revision '{session.Revision}' has no {StableDiffusionFiles.ModelIndex}: it is not a diffusers pipeline repository. " +
                $"Use a diffusers ONNX export such as '{DefaultModelId}'.")
            {
                RepoId = repoId,
                Revision = session.Revision,
                FilePath = StableDiffusionFiles.ModelIndex,
                Missing = HubMissingItem.File,
            };
        }

        string modelIndex = await EnsureFileAsync(session, modelIndexEntry, announced: false, cancellationToken).ConfigureAwait(false);
        IReadOnlyList<StableDiffusionFiles.Component> components = StableDiffusionFiles.ReadComponents(repoId, modelIndex);
        IReadOnlyList<string> selected = StableDiffusionFiles.Select(repoId, session.Revision, tree.Keys, components);
        // model_index.json is in place already.
        await EnsureFilesAsync(session, [.. selected.Where(path => path != StableDiffusionFiles.ModelIndex).Select(path => tree[path])], cancellationToken)
            .ConfigureAwait(false);

        var externalData = new List<RepoFileEntry>();
        foreach (StableDiffusionFiles.Component component in components.Where(c => c.IsOnnx))
        {
            IReadOnlyList<string> paths = StableDiffusionFiles.ExternalDataPaths(repoId, component.GraphPath, session.Cache.PointerPath(session.Commit, component.GraphPath));
            if (paths.Count > 0)
            {
                HubLog.ExternalData(_logger, component.GraphPath, string.Join(", ", paths));
            }

            foreach (string path in paths)
            {
                if (!tree.TryGetValue(path, out RepoFileEntry? entry))
                {
                    throw new HubNotFoundException(
                        $"{component.GraphPath} of '{repoId}' at revision '{session.Revision}' keeps its weights in '{path}', which the repository does not have.")
                    {
                        RepoId = repoId,
                        Revision = session.Revision,
                        FilePath = path,
                        Missing = HubMissingItem.File,
                    };
                }

                if (!externalData.Contains(entry))
                {
                    externalData.Add(entry);
                }
            }
        }

        await EnsureFilesAsync(session, externalData, cancellationToken).ConfigureAwait(false);
        HubLog.SnapshotReady(_logger, repoId, session.Commit, session.SnapshotFolder, selected.Count + externalData.Count, session.Tracker.BytesDownloaded);
        return session.SnapshotFolder;
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
        Session session = await OpenSessionAsync(repoId, revision, progress, cancellationToken).ConfigureAwait(false);
        if (session.Tree is not { } tree)
        {
            ThrowIfIncomplete(session, FindMissingFiles(session, filter));
            return session.SnapshotFolder;
        }

        List<RepoFileEntry> selected = [.. tree.Values.Where(entry => filter?.IsMatch(entry.Path) ?? true).OrderBy(entry => entry.Path, StringComparer.Ordinal)];
        await EnsureFilesAsync(session, selected, cancellationToken).ConfigureAwait(false);
        Directory.CreateDirectory(session.SnapshotFolder);
        HubLog.SnapshotReady(_logger, repoId, session.Commit, session.SnapshotFolder, selected.Count, session.Tracker.BytesDownloaded);
        return session.SnapshotFolder;
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
        var session = new Session(repoId, revision, commit, cache, new ProgressTracker(repoId, progress), Tree: null, CacheReason: null);
        var entry = new RepoFileEntry(filePath, metadata.Size, metadata.Etag);
        return await EnsureFileAsync(session, entry, announced: false, cancellationToken, metadata).ConfigureAwait(false);
    }

    /// <summary>Releases the HTTP connections (not a handler passed to the constructor).</summary>
    public void Dispose() => _transport.Dispose();

    /// <summary>
    /// Resolves the revision to a commit and lists its files, from the Hub; or from the cache (<c>refs/</c>, then the
    /// snapshot) when offline, or when the Hub fails and the snapshot is cached. A cache-only session has no
    /// <see cref="Session.Tree"/>.
    /// </summary>
    private async Task<Session> OpenSessionAsync(string repoId, string? revision, IProgress<HubDownloadProgress>? progress, CancellationToken cancellationToken)
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
            return new Session(repoId, revision, commit, cache, tracker, Tree: null, CacheReason: null);
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

            var session = new Session(repoId, revision, commit!, cache, tracker, Tree: null, CacheReason: null);
            return session with { Tree = await ListFilesAsync(session, retry: !snapshotCached, cancellationToken).ConfigureAwait(false) };
        }
        catch (HubException e) when (snapshotCached && CanFallBackToCache(e))
        {
            HubLog.UsingCacheAfterError(_logger, repoId, revision, commit!, e.Message);
            return new Session(repoId, revision, commit!, cache, tracker, Tree: null, CacheReason: e);
        }
    }

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

    /// <summary>The files at the session's commit: the cached listing (ours or Python's) or the Hub's tree API, page by page.</summary>
    private async Task<IReadOnlyDictionary<string, RepoFileEntry>> ListFilesAsync(Session session, bool retry, CancellationToken cancellationToken)
    {
        if (session.Cache.ReadTree(session.Commit) is { } cached)
        {
            HubLog.Listed(_logger, session.RepoId, session.Commit, cached.Count, "cache");
            return cached;
        }

        var entries = new Dictionary<string, RepoFileEntry>(StringComparer.Ordinal);
        var context = new HubRequestContext(session.RepoId, session.Revision);
        for (Uri? page = RepoNames.TreeUrl(Options.Endpoint, session.RepoId, session.Commit); page is not null;)
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
                        RepoId = session.RepoId,
                    };
                }
            }

            page = next;
        }

        HubLog.Listed(_logger, session.RepoId, session.Commit, entries.Count, "Hub");
        session.Cache.WriteTree(session.Commit, entries);
        return entries;
    }

    /// <summary>Downloads the files missing from the snapshot, several at a time; every path is checked before anything is written.</summary>
    private async Task EnsureFilesAsync(Session session, IReadOnlyList<RepoFileEntry> entries, CancellationToken cancellationToken)
    {
        foreach (RepoFileEntry entry in entries)
        {
            RepoNames.ValidateFilePath(session.RepoId, entry.Path, "listed by the Hub");
        }

        // Announce what is to download up front, so that progress totals are known from the first report.
        var announced = new HashSet<string>(StringComparer.Ordinal);
        foreach (RepoFileEntry entry in entries)
        {
            if (session.Cache.FindCachedFile(session.Commit, entry.Path) is null)
            {
                announced.Add(entry.Path);
                session.Tracker.AddFile(entry.ContentSize);
            }
        }

        await Parallel.ForEachAsync(
            entries,
            new ParallelOptions { MaxDegreeOfParallelism = Options.MaxConcurrentDownloads, CancellationToken = cancellationToken },
            async (entry, token) => await EnsureFileAsync(session, entry, announced.Contains(entry.Path), token).ConfigureAwait(false)).ConfigureAwait(false);
    }

    /// <summary>
    /// Makes <paramref name="entry"/> present in the snapshot, as <c>hf_hub_download</c> does at a pinned commit: the cached
    /// file, else a link to a cached blob, else a download under the blob's lock.
    /// </summary>
    private async Task<string> EnsureFileAsync(Session session, RepoFileEntry entry, bool announced, CancellationToken cancellationToken, HubFileMetadata? metadata = null)
    {
        RepoCache cache = session.Cache;
        string path = entry.Path;
        RepoCache.CachedFile? cached = cache.FindCachedFile(session.Commit, path);
        if (cached is not null)
        {
            if (cached.Length == entry.ContentSize)
            {
                HubLog.CacheHit(_logger, session.RepoId, path);
                return cached.Path;
            }

            HubLog.CachedFileWrongSize(_logger, path, cached.Length, entry.ContentSize);
        }

        var context = new HubRequestContext(session.RepoId, session.Revision, path);
        metadata ??= await _transport.HeadFileAsync(RepoNames.ResolveUrl(Options.Endpoint, session.RepoId, session.Commit, path), context, retry: true, cancellationToken)
            .ConfigureAwait(false);
        ValidateEtag(metadata.Etag, context);
        string blob = cache.BlobPath(metadata.Etag);
        cache.EnsureCacheDirTag();
        using (await CacheFileLock.AcquireAsync(cache.LockPath(metadata.Etag), path, _logger, cancellationToken).ConfigureAwait(false))
        {
            if (cached is not null)
            {
                cache.Evict(session.Commit, path);
            }

            bool newBlob = false;
            var existing = new FileInfo(blob);
            if (!existing.Exists || existing.Length != metadata.Size)
            {
                if (!announced)
                {
                    session.Tracker.AddFile(metadata.Size);
                }

                HubLog.DownloadingFile(_logger, session.RepoId, path, metadata.Size);
                Directory.CreateDirectory(cache.BlobsFolder);
                string temporary = cache.IncompletePath(metadata.Etag);
                try
                {
                    await _downloader.DownloadAsync(metadata, temporary, context, delta => session.Tracker.OnBytes(path, delta), cancellationToken).ConfigureAwait(false);
                    File.Move(temporary, blob, overwrite: true);
                }
                finally
                {
                    RepoCache.DeleteIfPresent(temporary);
                }

                newBlob = true;
                HubLog.DownloadedFile(_logger, session.RepoId, path, metadata.Size);
            }
            else if (announced)
            {
                // Another process (or a snapshot sharing the blob) brought it: count it as done.
                session.Tracker.OnBytes(path, metadata.Size);
            }

            cache.LinkIntoSnapshot(blob, session.Commit, path, newBlob, Options.UseSymbolicLinks);
            if (newBlob || announced)
            {
                session.Tracker.OnFileCompleted(path);
            }
        }

        return cache.PointerPath(session.Commit, path);
    }

    /// <summary>What the cached snapshot lacks, judged by the cached listing when there is one (else nothing can be known).</summary>
    private static List<string> FindMissingFiles(Session session, GlobFilter? filter)
    {
        if (!Directory.Exists(session.SnapshotFolder))
        {
            return [SnapshotName(session.Commit)];
        }

        IReadOnlyDictionary<string, RepoFileEntry>? tree = session.Cache.ReadTree(session.Commit);
        return tree is null ? [] : MissingFromSnapshot(session, tree.Keys.Where(path => filter?.IsMatch(path) ?? true));
    }

    /// <summary>What the cached snapshot lacks for a Stable Diffusion pipeline.</summary>
    private static List<string> FindMissingStableDiffusionFiles(Session session)
    {
        if (!Directory.Exists(session.SnapshotFolder))
        {
            return [SnapshotName(session.Commit)];
        }

        if (session.Cache.FindCachedFile(session.Commit, StableDiffusionFiles.ModelIndex) is not { } modelIndex)
        {
            return [StableDiffusionFiles.ModelIndex];
        }

        IReadOnlyList<StableDiffusionFiles.Component> components = StableDiffusionFiles.ReadComponents(session.RepoId, modelIndex.Path);
        IReadOnlyDictionary<string, RepoFileEntry>? tree = session.Cache.ReadTree(session.Commit);
        List<string> missing;
        if (tree is not null)
        {
            missing = MissingFromSnapshot(session, StableDiffusionFiles.Select(session.RepoId, session.Revision, tree.Keys, components));
        }
        else
        {
            // Without a listing (older Python caches) the exact config files are unknown: require each graph and each folder.
            missing = MissingFromSnapshot(session, components.Where(c => c.IsOnnx).Select(c => c.GraphPath));
            missing.AddRange(components.Where(c => !c.IsOnnx && !Directory.Exists(Path.Combine(session.SnapshotFolder, c.Name))).Select(c => c.Name + "/"));
        }

        foreach (StableDiffusionFiles.Component component in components.Where(c => c.IsOnnx && !missing.Contains(c.GraphPath)))
        {
            string graph = session.Cache.PointerPath(session.Commit, component.GraphPath);
            missing.AddRange(MissingFromSnapshot(session, StableDiffusionFiles.ExternalDataPaths(session.RepoId, component.GraphPath, graph)));
        }

        return missing;
    }

    private static List<string> MissingFromSnapshot(Session session, IEnumerable<string> paths)
    {
        var missing = new List<string>();
        foreach (string path in paths)
        {
            RepoNames.ValidateFilePath(session.RepoId, path, "listed in the cache");
            if (session.Cache.FindCachedFile(session.Commit, path) is null)
            {
                missing.Add(path);
            }
        }

        return missing;
    }

    /// <summary>Throws when a cache-only session lacks files: offline, naming them; after a Hub failure, that failure, extended.</summary>
    private void ThrowIfIncomplete(Session session, List<string> missing)
    {
        if (missing.Count == 0)
        {
            return;
        }

        if (session.CacheReason is null)
        {
            throw OfflineMiss(session.Cache, session.Revision, missing, session.Commit);
        }

        HubException cause = session.CacheReason;
        if (cause is HubAuthenticationException or HubNotFoundException)
        {
            ExceptionDispatchInfo.Throw(cause);
        }

        string message = $"{cause.Message} The cached snapshot {session.Commit} of '{session.RepoId}' lacks {Describe(missing)}.";
        throw cause switch
        {
            HubRateLimitedException limited => new HubRateLimitedException(message, cause) { RepoId = session.RepoId, StatusCode = cause.StatusCode, RetryAfter = limited.RetryAfter },
            _ => new HubUnavailableException(message, cause) { RepoId = session.RepoId, StatusCode = cause.StatusCode },
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

    /// <summary>One call's repository, resolved commit, cache and progress.</summary>
    /// <param name="RepoId">The repository.</param>
    /// <param name="Revision">The revision asked for.</param>
    /// <param name="Commit">The commit it resolved to.</param>
    /// <param name="Cache">The repository's cache folder.</param>
    /// <param name="Tracker">The call's progress.</param>
    /// <param name="Tree">The files at the commit; <see langword="null"/> when only the cache is used (offline, or the Hub failed).</param>
    /// <param name="CacheReason">Why the Hub is not used after a failure; <see langword="null"/> offline.</param>
    private sealed record Session(
        string RepoId, string Revision, string Commit, RepoCache Cache, ProgressTracker Tracker, IReadOnlyDictionary<string, RepoFileEntry>? Tree, HubException? CacheReason)
    {
        public string SnapshotFolder => Cache.SnapshotFolder(Commit);
    }
}
