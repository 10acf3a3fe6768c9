using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace StableDiffusion.Hub;

/// <summary>
/// One model repository in the cache, laid out exactly as <c>huggingface_hub</c> lays it out so that both read each
/// other's downloads:
/// <code>
/// {cache}/.locks/models--org--name/{etag}.lock
/// {cache}/models--org--name/refs/{revision}              the commit, no newline
/// {cache}/models--org--name/blobs/{etag}                 the content (sha256 for LFS files, git sha1 otherwise)
/// {cache}/models--org--name/snapshots/{commit}/{path}    relative symbolic link to ../../blobs/{etag} (one more ../ per folder)
/// {cache}/models--org--name/trees/{commit}.json          the file listing at that commit (huggingface_hub 1.22+)
/// </code>
/// Python also keeps <c>.no_exist/{commit}/{path}</c> markers for files a 404 said are missing; they are not needed here.
/// </summary>
internal sealed class RepoCache
{
    /// <summary>A file found in a snapshot.</summary>
    /// <param name="Path">The snapshot path (what callers open).</param>
    /// <param name="Length">The size of its content.</param>
    public sealed record CachedFile(string Path, long Length);

    private const string CacheDirTagSignature = "Signature: 8a477f597d28d172789f06886806bc55";
    private const int TreeCacheFormatVersion = 1;
    private static readonly ConcurrentDictionary<string, bool> SymbolicLinksSupported = new(StringComparer.Ordinal);
    private static readonly StringComparison PathComparison = OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;

    private readonly ILogger _logger;

    public RepoCache(string cacheDirectory, string repoId, ILogger logger)
    {
        CacheDirectory = Path.GetFullPath(cacheDirectory);
        RepoId = repoId;
        _logger = logger;
        string folderName = RepoNames.StorageFolderName(repoId);
        StorageFolder = Path.Combine(CacheDirectory, folderName);
        BlobsFolder = Path.Combine(StorageFolder, "blobs");
        LocksFolder = Path.Combine(CacheDirectory, ".locks", folderName);
    }

    public string CacheDirectory { get; }

    public string RepoId { get; }

    /// <summary><c>{cache}/models--org--name</c>.</summary>
    public string StorageFolder { get; }

    public string BlobsFolder { get; }

    public string LocksFolder { get; }

    public string SnapshotFolder(string commit) => Path.Combine(StorageFolder, "snapshots", commit);

    public string PointerPath(string commit, string repoPath) => RepoNames.ToLocalPath(SnapshotFolder(commit), repoPath);

    public string BlobPath(string etag) => Path.Combine(BlobsFolder, etag);

    public string LockPath(string etag) => Path.Combine(LocksFolder, etag + ".lock");

    public string RefPath(string revision) => RepoNames.ToLocalPath(Path.Combine(StorageFolder, "refs"), revision);

    /// <summary>The commit <c>refs/{revision}</c> records, or <see langword="null"/>.</summary>
    public string? ReadRef(string revision)
    {
        string path = RefPath(revision);
        try
        {
            return File.Exists(path) && File.ReadAllText(path).Trim() is { Length: > 0 } commit && RepoNames.IsCommitHash(commit) ? commit : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Records <c>refs/{revision}</c> = <paramref name="commit"/> atomically, when it changed and the revision is not itself the commit.</summary>
    public void WriteRef(string revision, string commit)
    {
        if (revision == commit || ReadRef(revision) == commit)
        {
            return;
        }

        string path = RefPath(revision);
        WriteAtomically(path, Encoding.ASCII.GetBytes(commit));
    }

    /// <summary>Writes <c>CACHEDIR.TAG</c> (so that backup tools skip the cache) when missing, as <c>huggingface_hub</c> does.</summary>
    public void EnsureCacheDirTag()
    {
        string path = Path.Combine(CacheDirectory, "CACHEDIR.TAG");
        if (File.Exists(path))
        {
            return;
        }

        WriteAtomically(
            path,
            Encoding.ASCII.GetBytes(
                CacheDirTagSignature + "\n# This file is a cache directory tag created by StableDiffusion.NET for the Hugging Face Hub cache.\n" +
                "# For information about cache directory tags, see https://bford.info/cachedir/\n"));
    }

    /// <summary>The file listing cached for <paramref name="commit"/> (ours or Python's), or <see langword="null"/>.</summary>
    public IReadOnlyDictionary<string, RepoFileEntry>? ReadTree(string commit)
    {
        string path = TreePath(commit);
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            using JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(path));
            JsonElement root = document.RootElement;
            if (!root.TryGetProperty("format_version", out JsonElement version) || version.ValueKind != JsonValueKind.Number
                || version.GetInt32() != TreeCacheFormatVersion)
            {
                return null;
            }

            var entries = new Dictionary<string, RepoFileEntry>(StringComparer.Ordinal);
            foreach (JsonProperty file in root.GetProperty("files").EnumerateObject())
            {
                entries[file.Name] = RepoFileEntry.FromTreeCache(file.Name, file.Value);
            }

            return entries;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException or InvalidOperationException or KeyNotFoundException or FormatException)
        {
            HubLog.CacheWriteFailed(_logger, path, "ignored an unreadable listing cache: " + e.Message);
            return null;
        }
    }

    /// <summary>Caches the listing of <paramref name="commit"/> in <c>trees/{commit}.json</c> (a commit never changes).</summary>
    public void WriteTree(string commit, IReadOnlyDictionary<string, RepoFileEntry> entries)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            writer.WriteStartObject();
            writer.WriteNumber("format_version", TreeCacheFormatVersion);
            writer.WriteStartObject("files");
            foreach (RepoFileEntry entry in entries.Values.OrderBy(e => e.Path, StringComparer.Ordinal))
            {
                entry.WriteTreeCache(writer);
            }

            writer.WriteEndObject();
            writer.WriteEndObject();
        }

        WriteAtomically(TreePath(commit), buffer.ToArray());
    }

    /// <summary>
    /// The snapshot file for <paramref name="repoPath"/> at <paramref name="commit"/> when it is in the cache, else
    /// <see langword="null"/>. A link leading anywhere but this repository's <c>blobs/</c> is refused.
    /// </summary>
    /// <exception cref="HubIntegrityException">The snapshot contains a link leading out of the cache.</exception>
    public CachedFile? FindCachedFile(string commit, string repoPath)
    {
        string pointer = PointerPath(commit, repoPath);
        return ResolvePointer(pointer, repoPath) is { } content && new FileInfo(content) is { Exists: true } info
            ? new CachedFile(pointer, info.Length)
            : null;
    }

    /// <summary>
    /// The repository paths of the entries in the snapshot of <paramref name="commit"/> (files, or links to blobs), in ordinal
    /// order; left-over temporary copies are skipped. Whether an entry is usable is <see cref="FindCachedFile"/>'s to say.
    /// </summary>
    public IReadOnlyList<string> ListSnapshot(string commit)
    {
        string folder = SnapshotFolder(commit);
        if (!Directory.Exists(folder))
        {
            return [];
        }

        var options = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0, IgnoreInaccessible = true };
        return [.. Directory.EnumerateFiles(folder, "*", options)
            .Where(path => !path.EndsWith(".incomplete", StringComparison.Ordinal))
            .Select(path => Path.GetRelativePath(folder, path).Replace(Path.DirectorySeparatorChar, '/'))
            .Order(StringComparer.Ordinal)];
    }

    /// <summary>
    /// Puts the blob at <paramref name="repoPath"/> in the snapshot: a relative symbolic link, or where links are unavailable
    /// a move (a blob just downloaded) or a copy (a blob other snapshots may use).
    /// </summary>
    public void LinkIntoSnapshot(string blobPath, string commit, string repoPath, bool newBlob, bool useSymbolicLinks)
    {
        string pointer = PointerPath(commit, repoPath);
        string folder = Path.GetDirectoryName(pointer)!;
        Directory.CreateDirectory(folder);
        if (ResolvePointer(pointer, repoPath) is { } existing && File.Exists(existing))
        {
            return;
        }

        DeleteIfPresent(pointer);
        if (useSymbolicLinks && AreSymbolicLinksSupported())
        {
            try
            {
                File.CreateSymbolicLink(pointer, Path.GetRelativePath(folder, blobPath));
                return;
            }
            catch (IOException) when (ResolvePointer(pointer, repoPath) is { } raced && File.Exists(raced))
            {
                // Another process linked the same file between our check and our link.
                return;
            }
        }

        if (newBlob)
        {
            File.Move(blobPath, pointer, overwrite: true);
        }
        else
        {
            // Copy beside the target, then rename, so that a partial copy is never where the file is expected.
            string temporary = $"{pointer}.{Guid.NewGuid().ToString("N")[..8]}.incomplete";
            try
            {
                File.Copy(blobPath, temporary);
                File.Move(temporary, pointer, overwrite: true);
            }
            finally
            {
                DeleteIfPresent(temporary);
            }
        }
    }

    /// <summary>Removes a snapshot file and its blob (under the blob's lock), when the cached content is wrong.</summary>
    public void Evict(string commit, string repoPath)
    {
        string pointer = PointerPath(commit, repoPath);
        if (ResolvePointer(pointer, repoPath) is { } content && content != pointer)
        {
            DeleteIfPresent(content);
        }

        DeleteIfPresent(pointer);
    }

    /// <summary>A process-unique temporary name beside the blob, as <c>huggingface_hub</c> 1.18+ uses: <c>{etag}.{8 hex}.incomplete</c>.</summary>
    public string IncompletePath(string etag) => Path.Combine(BlobsFolder, $"{etag}.{Guid.NewGuid().ToString("N")[..8]}.incomplete");

    public static void DeleteIfPresent(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }

    /// <summary>
    /// Where the content of a snapshot entry is: the entry itself (a copy) or its link target inside <c>blobs/</c>;
    /// <see langword="null"/> when there is no entry.
    /// </summary>
    private string? ResolvePointer(string pointer, string repoPath)
    {
        string snapshots = Path.Combine(StorageFolder, "snapshots");
        // No folder between the repository folder and the file may be a link: Python never makes one, and one could lead anywhere.
        for (string? folder = Path.GetDirectoryName(pointer); folder is not null && folder.Length >= snapshots.Length; folder = Path.GetDirectoryName(folder))
        {
            var info = new DirectoryInfo(folder);
            if (info.LinkTarget is not null)
            {
                throw LeadsOut(repoPath, folder, info.LinkTarget);
            }
        }

        var file = new FileInfo(pointer);
        if (file.LinkTarget is not { } target)
        {
            return file.Exists ? pointer : null;
        }

        string resolved = Path.GetFullPath(Path.Combine(file.DirectoryName!, target));
        if (!resolved.StartsWith(BlobsFolder + Path.DirectorySeparatorChar, PathComparison)
            || resolved.AsSpan(BlobsFolder.Length + 1).IndexOfAny(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar) >= 0)
        {
            throw LeadsOut(repoPath, pointer, target);
        }

        if (new FileInfo(resolved).LinkTarget is { } chained)
        {
            throw LeadsOut(repoPath, resolved, chained);
        }

        return resolved;
    }

    private HubIntegrityException LeadsOut(string repoPath, string link, string target) =>
        new($"Refused the cached '{repoPath}' of '{RepoId}': '{link}' is a link to '{target}', outside the repository's blobs folder " +
            $"'{BlobsFolder}'. The cache may have been tampered with: delete '{StorageFolder}' and download again.")
        {
            RepoId = RepoId,
            FilePath = repoPath,
        };

    private string TreePath(string commit) => Path.Combine(StorageFolder, "trees", commit + ".json");

    private bool AreSymbolicLinksSupported() => SymbolicLinksSupported.GetOrAdd(CacheDirectory, ProbeSymbolicLinks, _logger);

    private static bool ProbeSymbolicLinks(string cacheDirectory, ILogger logger)
    {
        string probe = Path.Combine(cacheDirectory, ".symlink-probe-" + Guid.NewGuid().ToString("N"));
        try
        {
            Directory.CreateDirectory(probe);
            string source = Path.Combine(probe, "source");
            File.WriteAllBytes(source, []);
            File.CreateSymbolicLink(Path.Combine(probe, "link"), "source");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            HubLog.SymbolicLinksUnavailable(logger, cacheDirectory);
            return false;
        }
        finally
        {
            try
            {
                Directory.Delete(probe, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
    }

    /// <summary>Writes through a temporary file and a rename so that readers never see a partial file; logs instead of failing (read-only caches).</summary>
    private void WriteAtomically(string path, byte[] content)
    {
        string temporary = $"{path}.{Guid.NewGuid().ToString("N")[..8]}.tmp";
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllBytes(temporary, content);
            File.Move(temporary, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            HubLog.CacheWriteFailed(_logger, path, e.Message);
            try
            {
                File.Delete(temporary);
            }
            catch (Exception cleanup) when (cleanup is IOException or UnauthorizedAccessException)
            {
            }
        }
    }
}
