using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace StableDiffusion.Hub.Tests.FakeHub;

/// <summary>A file of a fake repository, with the hashes the Hub would announce for it.</summary>
public sealed class FakeFile
{
    public FakeFile(string path, byte[] content, bool isLfs)
    {
        Path = path;
        Content = content;
        IsLfs = isLfs;
        Sha256 = Convert.ToHexStringLower(SHA256.HashData(content));
        GitSha1 = GitBlobSha1(content);
    }

    public string Path { get; }

    public byte[] Content { get; }

    /// <summary>Served through a redirect to the CDN port, with <c>X-Linked-Etag</c> = sha256 (as LFS/Xet files are).</summary>
    public bool IsLfs { get; }

    public string Sha256 { get; }

    public string GitSha1 { get; }

    /// <summary>The blob name in the cache: sha256 for LFS files, the git blob sha1 otherwise.</summary>
    public string Etag => IsLfs ? Sha256 : GitSha1;

    public static string GitBlobSha1(byte[] content)
    {
        byte[] header = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"blob {content.Length}\0"));
        return Convert.ToHexStringLower(SHA1.HashData([.. header, .. content]));
    }
}

/// <summary>A repository of the fake Hub: commits, branches and tags, and who may read it.</summary>
public sealed class FakeRepository(string id)
{
    private readonly ConcurrentDictionary<string, IReadOnlyDictionary<string, FakeFile>> _commits = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _refs = new(StringComparer.Ordinal);

    public string Id { get; } = id;

    /// <summary>Only requests with <c>Authorization: Bearer {AccessToken}</c> see it; others get 401 RepoNotFound.</summary>
    public string? AccessToken { get; set; }

    /// <summary>Gated: without a token 401 GatedRepo, with another token 403 GatedRepo.</summary>
    public string? GatedApprovedToken { get; set; }

    /// <summary>An older name that redirects here (relative <c>Location</c>), as the Hub does for renamed repositories.</summary>
    public string? FormerId { get; set; }

    /// <summary>Adds a commit with these files (LFS when <paramref name="isLfs"/> says so) and points the refs at it.</summary>
    public string AddCommit(IReadOnlyDictionary<string, byte[]> files, Func<string, bool>? isLfs = null, params string[] refs)
    {
        string commit = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(20));
        _commits[commit] = files.ToDictionary(f => f.Key, f => new FakeFile(f.Key, f.Value, isLfs?.Invoke(f.Key) ?? false), StringComparer.Ordinal);
        foreach (string name in refs)
        {
            _refs[name] = commit;
        }

        return commit;
    }

    /// <summary>Points a branch or tag at a commit.</summary>
    public void SetRef(string name, string commit) => _refs[name] = commit;

    /// <summary>The commit a branch, tag or commit hash names, or <see langword="null"/>.</summary>
    public string? Resolve(string revision) =>
        _commits.ContainsKey(revision) ? revision : _refs.TryGetValue(revision, out string? commit) ? commit : null;

    public IReadOnlyDictionary<string, FakeFile> Files(string commit) => _commits[commit];

    public FakeFile File(string commit, string path) => _commits[commit][path];

    /// <summary>Every file of every commit with this sha256 (for the CDN).</summary>
    public FakeFile? FindBySha256(string sha256) =>
        _commits.Values.SelectMany(files => files.Values).FirstOrDefault(f => f.Sha256 == sha256);
}
