namespace StableDiffusion.Hub;

/// <summary>
/// A repository revision resolved to a commit by <see cref="HubClient.GetSnapshotAsync"/>: its file listing, and its
/// snapshot folder in the cache (<c>…/models--org--name/snapshots/{commit}</c>), into which files are downloaded on
/// demand.
/// </summary>
/// <remarks>
/// <para>
/// For downloads that decide what to fetch from what they have fetched so far, as <c>diffusers</c> does: read the
/// listing (<see cref="Files"/>), download a description file, choose the rest, download it with
/// <see cref="DownloadFilesAsync"/>. Every download of one snapshot reports to the same progress and lands in the same
/// commit's folder, even if the branch moves meanwhile.
/// </para>
/// <para>
/// When <see cref="IsCacheOnly"/> (offline, or the Hub failed and the snapshot is cached), nothing is requested: files
/// come from the cache, and a request for files it lacks fails with an exception that names all of them
/// (<see cref="HubOfflineException"/> offline; after a Hub failure, that failure with the missing files added).
/// </para>
/// <para>Thread-safe. It uses the connections of the client that made it: dispose the client only when done with it.</para>
/// </remarks>
public sealed class HubSnapshot
{
    private readonly HubClient _client;

    internal HubSnapshot(
        HubClient client,
        string repoId,
        string revision,
        string commit,
        RepoCache cache,
        ProgressTracker tracker,
        IReadOnlyDictionary<string, RepoFileEntry>? listing,
        bool isCacheOnly,
        HubException? cacheReason)
    {
        _client = client;
        RepoId = repoId;
        Revision = revision;
        Commit = commit;
        Cache = cache;
        Tracker = tracker;
        Listing = listing;
        IsCacheOnly = isCacheOnly;
        CacheReason = cacheReason;
        Files = listing is null ? null : [.. listing.Keys.Order(StringComparer.Ordinal)];
    }

    /// <summary>The repository (<c>org/name</c>).</summary>
    public string RepoId { get; }

    /// <summary>The revision asked for (a branch, tag or commit).</summary>
    public string Revision { get; }

    /// <summary>The commit the revision resolved to (40 hex digits).</summary>
    public string Commit { get; }

    /// <summary>The snapshot folder, <c>{cache}/models--org--name/snapshots/{commit}</c>. It may not exist before the first download.</summary>
    public string Folder => Cache.SnapshotFolder(Commit);

    /// <summary>
    /// Every file of the repository at <see cref="Commit"/> (repository paths, <c>/</c>-separated, in ordinal order): the
    /// Hub's listing, or the listing an earlier download cached (this library's or Python's); <see langword="null"/>
    /// when only the cache is used and it holds no listing (then <see cref="ListCachedFiles"/> says what is there).
    /// </summary>
    public IReadOnlyList<string>? Files { get; }

    /// <summary>
    /// Whether the Hub is left alone: offline mode, or the Hub could not be used and the cached snapshot stands in (a
    /// warning is logged). Downloads then only find files in the cache.
    /// </summary>
    public bool IsCacheOnly { get; }

    /// <summary>The bytes this snapshot's downloads have received so far.</summary>
    public long BytesDownloaded => Tracker.BytesDownloaded;

    internal RepoCache Cache { get; }

    internal ProgressTracker Tracker { get; }

    /// <summary>The files at the commit with their sizes and hashes; <see langword="null"/> when unknown (cache only, no cached listing).</summary>
    internal IReadOnlyDictionary<string, RepoFileEntry>? Listing { get; }

    /// <summary>Why the Hub is not used after a failure; <see langword="null"/> online and offline.</summary>
    internal HubException? CacheReason { get; }

    /// <summary>The local path of a file of this snapshot when it is in the cache, else <see langword="null"/>. Makes no request.</summary>
    /// <param name="path">The file's repository path, <c>/</c>-separated (<c>unet/config.json</c>).</param>
    /// <returns>The file in <see cref="Folder"/>, or <see langword="null"/>.</returns>
    /// <exception cref="HubIntegrityException"><paramref name="path"/> could lead outside the cache, or the cached entry is a link leading out of it.</exception>
    public string? FindCachedFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        RepoNames.ValidateFilePath(RepoId, path, "requested");
        return Cache.FindCachedFile(Commit, path)?.Path;
    }

    /// <summary>The files of this snapshot that are in the cache (repository paths, <c>/</c>-separated, in ordinal order). Makes no request.</summary>
    /// <returns>The cached files; empty when the snapshot folder does not exist.</returns>
    public IReadOnlyList<string> ListCachedFiles() => Cache.ListSnapshot(Commit);

    /// <summary>Makes one file of this snapshot present in the cache, like <c>hf_hub_download</c> at <see cref="Commit"/>.</summary>
    /// <param name="path">The file's repository path, <c>/</c>-separated.</param>
    /// <param name="cancellationToken">Cancels the download; a partial file is discarded.</param>
    /// <returns>The file in <see cref="Folder"/>.</returns>
    /// <exception cref="HubNotFoundException">The listing has no such file.</exception>
    /// <exception cref="HubException">The download failed, or (<see cref="IsCacheOnly"/>) the file is not cached; the derived type says why.</exception>
    public async Task<string> DownloadFileAsync(string path, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        await DownloadFilesAsync([path], cancellationToken).ConfigureAwait(false);
        return Cache.PointerPath(Commit, path);
    }

    /// <summary>
    /// Makes these files of this snapshot present in the cache, several at a time: those already there are kept, the others
    /// downloaded. Every path is checked against the listing before anything is downloaded.
    /// </summary>
    /// <param name="paths">Repository paths, <c>/</c>-separated; duplicates are ignored.</param>
    /// <param name="cancellationToken">Cancels the downloads; finished files stay in the cache, files in progress are discarded.</param>
    /// <returns>A task that completes when every file is in <see cref="Folder"/>.</returns>
    /// <exception cref="HubNotFoundException">The listing lacks one of the files (the first is named).</exception>
    /// <exception cref="HubException">A download failed, or (<see cref="IsCacheOnly"/>) files are not cached (all are named); the derived type says why.</exception>
    public Task DownloadFilesAsync(IEnumerable<string> paths, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(paths);
        return _client.EnsureFilesAsync(this, [.. paths.Distinct(StringComparer.Ordinal)], cancellationToken);
    }
}
