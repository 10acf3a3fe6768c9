using System.Text.Json;

namespace StableDiffusion.Hub;

/// <summary>One file of a repository at a commit, as the Hub's tree listing describes it.</summary>
/// <param name="Path">The repository path, <c>/</c>-separated.</param>
/// <param name="Size">The size in bytes.</param>
/// <param name="BlobId">The git blob id (sha1).</param>
/// <param name="LfsSha256">For LFS files, the content's sha256.</param>
/// <param name="LfsSize">For LFS files, the content's size.</param>
/// <param name="XetHash">For Xet-stored files, the Xet hash (kept only to write the shared listing cache).</param>
internal sealed record RepoFileEntry(string Path, long Size, string BlobId, string? LfsSha256 = null, long? LfsSize = null, string? XetHash = null)
{
    /// <summary>The name the blob gets in the cache (the ETag the Hub sends for it).</summary>
    public string Etag => LfsSha256 ?? BlobId;

    /// <summary>The content size.</summary>
    public long ContentSize => LfsSize ?? Size;

    /// <summary>Reads one entry of <c>GET /api/models/{repo}/tree/{commit}</c>; <see langword="null"/> for folders.</summary>
    public static RepoFileEntry? FromTreeApi(JsonElement item)
    {
        if (item.ValueKind != JsonValueKind.Object || !item.TryGetProperty("type", out JsonElement type) || type.GetString() != "file")
        {
            return null;
        }

        string path = item.GetProperty("path").GetString() ?? throw new JsonException("A tree entry has no path.");
        long size = item.GetProperty("size").GetInt64();
        string oid = item.GetProperty("oid").GetString() ?? throw new JsonException($"The tree entry '{path}' has no oid.");
        string? lfsSha = null;
        long? lfsSize = null;
        if (item.TryGetProperty("lfs", out JsonElement lfs) && lfs.ValueKind == JsonValueKind.Object)
        {
            lfsSha = lfs.GetProperty("oid").GetString();
            lfsSize = lfs.GetProperty("size").GetInt64();
        }

        string? xet = item.TryGetProperty("xetHash", out JsonElement xetHash) && xetHash.ValueKind == JsonValueKind.String ? xetHash.GetString() : null;
        return new RepoFileEntry(path, size, oid, lfsSha, lfsSize, xet);
    }

    /// <summary>Reads one entry of <c>trees/{commit}.json</c> (the listing cache <c>huggingface_hub</c> 1.22+ keeps).</summary>
    public static RepoFileEntry FromTreeCache(string path, JsonElement info)
    {
        long? lfsSize = info.TryGetProperty("lfs_size", out JsonElement size) && size.ValueKind == JsonValueKind.Number ? size.GetInt64() : null;
        return new RepoFileEntry(
            path,
            info.GetProperty("size").GetInt64(),
            info.GetProperty("blob_id").GetString() ?? throw new JsonException($"'{path}' has no blob_id."),
            OptionalString(info, "lfs_sha256"),
            lfsSize,
            OptionalString(info, "xet_hash"));
    }

    /// <summary>Writes this entry as <c>trees/{commit}.json</c> does.</summary>
    public void WriteTreeCache(Utf8JsonWriter writer)
    {
        writer.WriteStartObject(Path);
        writer.WriteNumber("size", Size);
        writer.WriteString("blob_id", BlobId);
        if (LfsSha256 is not null)
        {
            writer.WriteString("lfs_sha256", LfsSha256);
            writer.WriteNumber("lfs_size", ContentSize);
        }

        if (XetHash is not null)
        {
            writer.WriteString("xet_hash", XetHash);
        }

        writer.WriteEndObject();
    }

    private static string? OptionalString(JsonElement info, string name) =>
        info.TryGetProperty(name, out JsonElement value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
