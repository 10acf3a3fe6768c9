using StableDiffusion.Hub;
using Xunit;

namespace StableDiffusion.Hub.Tests;

[Trait("Area", "Hub")]
public sealed class RepoNamesTests
{
    [Theory]
    [InlineData("gpt2")]
    [InlineData("onnx-community/stable-diffusion-v1-5-ONNX")]
    [InlineData("Org_1/model.v2")]
    public void ValidateRepoId_AcceptsHubIds(string repoId) => RepoNames.ValidateRepoId(repoId);

    [Theory]
    [InlineData("")]
    [InlineData("a/b/c")]
    [InlineData("-org/name")]
    [InlineData("org/name-")]
    [InlineData("org--x/name")]
    [InlineData("org/na..me")]
    [InlineData("org/name.git")]
    [InlineData("../name")]
    [InlineData("org/na me")]
    public void ValidateRepoId_RefusesWhatTheHubRefuses(string repoId) =>
        Assert.ThrowsAny<ArgumentException>(() => RepoNames.ValidateRepoId(repoId));

    [Theory]
    [InlineData("unet/model.onnx")]
    [InlineData("model_index.json")]
    [InlineData("a b/c..d.txt")]
    public void IsSafeRelativePath_AcceptsRepositoryPaths(string path) => Assert.True(RepoNames.IsSafeRelativePath(path));

    [Theory]
    [InlineData("../escape")]
    [InlineData("unet/../../escape")]
    [InlineData("unet/..")]
    [InlineData("/etc/passwd")]
    [InlineData("unet\\..\\..\\escape")]
    [InlineData("C:\\Windows\\x")]
    [InlineData("C:x")]
    [InlineData("unet//model.onnx")]
    [InlineData("./model.onnx")]
    [InlineData("")]
    [InlineData("a\0b")]
    public void IsSafeRelativePath_RefusesPathsThatCouldLeaveTheFolder(string path) => Assert.False(RepoNames.IsSafeRelativePath(path));

    [Fact]
    public void ValidateFilePath_ThrowsIntegrityExceptionNamingThePath()
    {
        var error = Assert.Throws<HubIntegrityException>(() => RepoNames.ValidateFilePath("org/name", "../x", "listed by the Hub"));
        Assert.Equal("../x", error.FilePath);
        Assert.Contains("'../x'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Urls_EncodeLikeHuggingfaceHub()
    {
        var endpoint = new Uri("https://hub.example/mirror/");

        Assert.Equal(
            "https://hub.example/mirror/org/name/resolve/refs%2Fpr%2F1/unet/my%20model.onnx",
            RepoNames.ResolveUrl(endpoint, "org/name", "refs/pr/1", "unet/my model.onnx").AbsoluteUri);
        Assert.Equal("https://hub.example/mirror/api/models/org/name/revision/v1.0", RepoNames.RevisionUrl(endpoint, "org/name", "v1.0").AbsoluteUri);
        Assert.Equal(
            "https://hub.example/mirror/api/models/org/name/tree/0123456789abcdef0123456789abcdef01234567?recursive=true&expand=false",
            RepoNames.TreeUrl(endpoint, "org/name", "0123456789abcdef0123456789abcdef01234567").AbsoluteUri);
    }

    [Fact]
    public void StorageFolderName_JoinsTypeAndIdWithDoubleDashes()
    {
        Assert.Equal("models--onnx-community--stable-diffusion-v1-5-ONNX", RepoNames.StorageFolderName("onnx-community/stable-diffusion-v1-5-ONNX"));
        Assert.Equal("models--gpt2", RepoNames.StorageFolderName("gpt2"));
    }

    [Theory]
    [InlineData("0123456789abcdef0123456789abcdef01234567", true)]
    [InlineData("0123456789ABCDEF0123456789abcdef01234567", false)]
    [InlineData("0123456", false)]
    [InlineData("main", false)]
    public void IsCommitHash_MatchesFortyLowercaseHexDigits(string revision, bool expected) => Assert.Equal(expected, RepoNames.IsCommitHash(revision));

    [Fact]
    public void ValidateRevision_RefusesNamesThatWouldLeaveRefs()
    {
        RepoNames.ValidateRevision("refs/pr/1");
        Assert.Throws<ArgumentException>(() => RepoNames.ValidateRevision("../../evil"));
        Assert.Throws<ArgumentException>(() => RepoNames.ValidateRevision("a\\b"));
    }
}

[Trait("Area", "Hub")]
public sealed class GlobFilterTests
{
    [Theory]
    [InlineData("*.json", "model_index.json", true)]
    [InlineData("*.json", "unet/config.json", true)] // '*' crosses '/', as fnmatch
    [InlineData("unet/*", "unet/a/b.onnx", true)]
    [InlineData("unet/", "unet/model.onnx", true)] // trailing '/' means the whole folder
    [InlineData("unet/*", "unet_2/model.onnx", false)]
    [InlineData("*.JSON", "model_index.json", false)] // case-sensitive
    [InlineData("model_index.jso?", "model_index.json", true)]
    [InlineData("[mt]*.txt", "tokenizer/merges.txt", true)]
    [InlineData("[!t]*.txt", "tokenizer/merges.txt", false)]
    [InlineData("unet\\*", "unet/model.onnx", true)] // '\' read as '/'
    [InlineData("a.b", "axb", false)] // '.' is literal
    [InlineData("[unclosed", "[unclosed", true)]
    public void IsMatch_BehavesAsHuggingfaceHubAllowPatterns(string pattern, string path, bool expected) =>
        Assert.Equal(expected, new GlobFilter([pattern]).IsMatch(path));

    [Fact]
    public void IsMatch_WithSeveralPatterns_MatchesAny()
    {
        var filter = new GlobFilter(["*.json", "*.txt"]);

        Assert.True(filter.IsMatch("tokenizer/merges.txt"));
        Assert.False(filter.IsMatch("unet/weights.pb"));
    }
}
