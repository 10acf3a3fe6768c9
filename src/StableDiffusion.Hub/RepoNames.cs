using System.Text.RegularExpressions;

namespace StableDiffusion.Hub;

/// <summary>
/// Validation of repository ids, revisions and repository file paths, and the Hub URLs and cache names built from them.
/// </summary>
/// <remarks>
/// File paths come from the Hub (or an ONNX graph) and end up joined to cache folders, so anything that could leave the
/// folder is refused under both POSIX and Windows rules: <c>..</c> and <c>.</c> segments, empty segments, absolute paths,
/// drive letters and streams (<c>:</c>), backslashes and control characters. The Hub itself never produces such names.
/// </remarks>
internal static partial class RepoNames
{
    /// <summary>A well-known repository id, for the examples in messages.</summary>
    public const string ExampleRepoId = "stable-diffusion-v1-5/stable-diffusion-v1-5";

    /// <summary>The model repository cache folder prefix: <c>models--org--name</c>.</summary>
    private const string ModelsPrefix = "models";

    /// <summary>The separator <c>huggingface_hub</c> puts between repository type and id parts in folder names.</summary>
    private const string FolderSeparator = "--";

    /// <summary>Whether <paramref name="revision"/> is a full commit hash (40 lowercase hex digits), as <c>huggingface_hub</c> decides.</summary>
    public static bool IsCommitHash(string revision) => CommitHashRegex().IsMatch(revision);

    /// <summary>Checks a repository id as <c>huggingface_hub</c> does: <c>name</c> or <c>namespace/name</c>.</summary>
    /// <exception cref="ArgumentException">The id is not a valid Hub repository id.</exception>
    public static void ValidateRepoId(string repoId)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(repoId);
        if (!IsValidRepoId(repoId))
        {
            throw new ArgumentException(
                $"'{repoId}' is not a Hugging Face repository id. Use 'name' or 'namespace/name' (for example " +
                $"'{RepoNames.ExampleRepoId}'): letters, digits, '-', '_' and '.', at most 96 characters per part, " +
                "not starting or ending with '-' or '.', without '--' or '..'.",
                nameof(repoId));
        }
    }

    /// <summary>Whether <paramref name="repoId"/> is a repository id <c>huggingface_hub</c> accepts.</summary>
    public static bool IsValidRepoId(string repoId) =>
        RepoIdRegex().IsMatch(repoId) && !repoId.Contains("--", StringComparison.Ordinal)
        && !repoId.Contains("..", StringComparison.Ordinal) && !repoId.EndsWith(".git", StringComparison.Ordinal);

    /// <summary>Checks a branch, tag or commit name that will also become a <c>refs/</c> file name.</summary>
    /// <exception cref="ArgumentException">The revision is empty or could name a file outside the cache.</exception>
    public static void ValidateRevision(string revision)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(revision);
        if (!IsSafeRelativePath(revision))
        {
            throw new ArgumentException(
                $"'{revision}' is not a usable revision: a branch, tag or commit name cannot contain '\\', ':', control " +
                "characters, empty, '.' or '..' segments, or start with '/'.",
                nameof(revision));
        }
    }

    /// <summary>Checks a repository file path before it is joined to a cache folder.</summary>
    /// <exception cref="HubIntegrityException">The path could lead outside the folder it is joined to.</exception>
    public static void ValidateFilePath(string repoId, string path, string source)
    {
        if (!IsSafeRelativePath(path))
        {
            throw new HubIntegrityException(
                $"Refused the file name '{path}' {source} in '{repoId}': it could lead outside the cache folder " +
                "(absolute path, '..' or '.' segment, '\\', ':' or a control character). Nothing was written for it; " +
                "report the file name to the repository owner.")
            {
                RepoId = repoId,
                FilePath = path,
            };
        }
    }

    /// <summary>The cache folder of a model repository: <c>models--org--name</c>.</summary>
    public static string StorageFolderName(string repoId) =>
        ModelsPrefix + FolderSeparator + repoId.Replace("/", FolderSeparator, StringComparison.Ordinal);

    /// <summary>Joins a validated <c>/</c>-separated repository path to a folder with the platform's separator.</summary>
    public static string ToLocalPath(string folder, string repoPath) =>
        Path.Combine(folder, repoPath.Replace('/', Path.DirectorySeparatorChar));

    /// <summary><c>{endpoint}/{repo}/resolve/{revision}/{path}</c>: the revision fully escaped, the path with its <c>/</c> kept.</summary>
    public static Uri ResolveUrl(Uri endpoint, string repoId, string revision, string path) =>
        new($"{EndpointBase(endpoint)}/{repoId}/resolve/{Uri.EscapeDataString(revision)}/{EscapePath(path)}");

    /// <summary><c>{endpoint}/api/models/{repo}/revision/{revision}</c>: the repository's commit for a branch or tag.</summary>
    public static Uri RevisionUrl(Uri endpoint, string repoId, string revision) =>
        new($"{EndpointBase(endpoint)}/api/models/{repoId}/revision/{Uri.EscapeDataString(revision)}");

    /// <summary><c>{endpoint}/api/models/{repo}/tree/{commit}?recursive=true&amp;expand=false</c>: every file at a commit.</summary>
    public static Uri TreeUrl(Uri endpoint, string repoId, string commit) =>
        new($"{EndpointBase(endpoint)}/api/models/{repoId}/tree/{Uri.EscapeDataString(commit)}?recursive=true&expand=false");

    /// <summary>The endpoint without its trailing <c>/</c>, for appending <c>/</c>-led paths.</summary>
    public static string EndpointBase(Uri endpoint) => endpoint.AbsoluteUri.TrimEnd('/');

    private static string EscapePath(string path) => string.Join('/', path.Split('/').Select(Uri.EscapeDataString));

    /// <summary>Whether <paramref name="path"/> is a relative <c>/</c>-separated path that stays inside the folder it is joined to.</summary>
    public static bool IsSafeRelativePath(string path)
    {
        if (path.Length == 0 || path[0] == '/')
        {
            return false;
        }

        foreach (char c in path)
        {
            if (c == '\\' || c == ':' || char.IsControl(c))
            {
                return false;
            }
        }

        foreach (string segment in path.Split('/'))
        {
            if (segment is "" or "." or "..")
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Whether an ETag can name a blob file: letters, digits, '.', '_' and '-' (a hash, in practice), not starting with '.'.</summary>
    public static bool IsSafeBlobName(string etag) => BlobNameRegex().IsMatch(etag);

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitHashRegex();

    [GeneratedRegex("^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")]
    private static partial Regex BlobNameRegex();

    [GeneratedRegex(@"^(?:[A-Za-z0-9_](?:[A-Za-z0-9_.\-]{0,94}[A-Za-z0-9_])?/)?[A-Za-z0-9_](?:[A-Za-z0-9_.\-]{0,94}[A-Za-z0-9_])?$")]
    private static partial Regex RepoIdRegex();
}
