using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace StableDiffusion.Hub;

/// <summary>
/// Checks downloaded bytes against the ETag the Hub sent: the sha256 of the content for LFS files (64 hex digits), the git
/// blob sha1 (<c>sha1("blob {size}\0" + content)</c>) for files stored in git (40 hex digits).
/// </summary>
internal sealed class ContentHash : IDisposable
{
    private readonly IncrementalHash _hash;
    private readonly string _expected;
    private readonly byte[]? _prefix;

    private ContentHash(HashAlgorithmName algorithm, string expected, byte[]? prefix)
    {
        _hash = IncrementalHash.CreateHash(algorithm);
        _expected = expected;
        _prefix = prefix;
        Reset();
    }

    /// <summary>The algorithm name for messages.</summary>
    public string Algorithm => _prefix is null ? "sha256" : "git sha1";

    /// <summary>A hasher for <paramref name="etag"/>, or <see langword="null"/> when the ETag is not a hash (then only the size is checked).</summary>
    public static ContentHash? For(string etag, long size)
    {
        if (!etag.All(char.IsAsciiHexDigit))
        {
            return null;
        }

        string expected = etag.ToLowerInvariant();
        return etag.Length switch
        {
            64 => new ContentHash(HashAlgorithmName.SHA256, expected, null),
            40 => new ContentHash(HashAlgorithmName.SHA1, expected, Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"blob {size}\0"))),
            _ => null,
        };
    }

    public void Append(ReadOnlySpan<byte> data) => _hash.AppendData(data);

    /// <summary>Starts over (the download restarted from its first byte).</summary>
    public void Reset()
    {
        _hash.GetHashAndReset();
        if (_prefix is not null)
        {
            _hash.AppendData(_prefix);
        }
    }

    /// <summary>Finishes the hash; returns the actual hex digest, or <see langword="null"/> when it matches.</summary>
    public string? Mismatch()
    {
        string actual = Convert.ToHexStringLower(_hash.GetHashAndReset());
        return actual == _expected ? null : actual;
    }

    public void Dispose() => _hash.Dispose();
}
