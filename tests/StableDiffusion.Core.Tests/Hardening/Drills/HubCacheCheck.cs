using StableDiffusion.Hub.Tests.FakeHub;

namespace StableDiffusion.Core.Tests.Hardening.Drills;

/// <summary>Inspects a Hugging Face cache after a failed or cancelled download.</summary>
public static class HubCacheCheck
{
    /// <summary>
    /// What is wrong in the cache of <paramref name="repoId"/>: a blob whose content is not the file its name (the file's
    /// hash) promises, a left-over temporary file, or a snapshot entry whose content is not the repository's file. Empty
    /// when every file the cache holds is complete and correct.
    /// </summary>
    /// <param name="cacheDirectory">The cache.</param>
    /// <param name="repoId">The repository.</param>
    /// <param name="commit">The commit whose snapshot to check.</param>
    /// <param name="files">The repository's files at that commit.</param>
    public static IReadOnlyList<string> Problems(string cacheDirectory, string repoId, string commit, IReadOnlyDictionary<string, FakeFile> files)
    {
        ArgumentNullException.ThrowIfNull(files);
        var problems = new List<string>();
        string storage = Path.Combine(cacheDirectory, "models--" + repoId.Replace("/", "--", StringComparison.Ordinal));
        string blobs = Path.Combine(storage, "blobs");
        if (Directory.Exists(blobs))
        {
            foreach (string blob in Directory.EnumerateFiles(blobs))
            {
                string name = Path.GetFileName(blob);
                FakeFile? file = files.Values.FirstOrDefault(f => f.Etag == name);
                if (file is null)
                {
                    problems.Add($"blobs/{name}: not a complete blob (a temporary file or an unknown name)");
                }
                else if (!File.ReadAllBytes(blob).AsSpan().SequenceEqual(file.Content))
                {
                    problems.Add($"blobs/{name} ({file.Path}): {new FileInfo(blob).Length} of {file.Content.Length} bytes, or different content");
                }
            }
        }

        string snapshot = Path.Combine(storage, "snapshots", commit);
        if (Directory.Exists(snapshot))
        {
            foreach (string entry in Directory.EnumerateFiles(snapshot, "*", SearchOption.AllDirectories))
            {
                string path = Path.GetRelativePath(snapshot, entry).Replace('\\', '/');
                if (!files.TryGetValue(path, out FakeFile? file) || TryRead(entry) is not { } content || !content.AsSpan().SequenceEqual(file.Content))
                {
                    problems.Add($"snapshots/{path}: does not hold the repository's file");
                }
            }
        }

        return problems;
    }

    // A snapshot entry is a link to a blob: a dangling one reads as missing.
    private static byte[]? TryRead(string path)
    {
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (IOException)
        {
            return null;
        }
    }
}
