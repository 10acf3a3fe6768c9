namespace StableDiffusion.Hub.Tests.FakeHub;

/// <summary>File contents for fake repositories: distinct random bytes, and which files the Hub serves through LFS.</summary>
public static class FakeContent
{
    /// <summary>Weights, graphs and checkpoints are LFS files (served from the CDN); configs are plain git files.</summary>
    public static bool IsLfs(string path) => !(path.EndsWith(".json", StringComparison.Ordinal) || path.EndsWith(".txt", StringComparison.Ordinal)
        || path.EndsWith(".md", StringComparison.Ordinal) || path == ".gitattributes");

    public static byte[] Bytes(int length, int seed)
    {
        byte[] bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }
}
