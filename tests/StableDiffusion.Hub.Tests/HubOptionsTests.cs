using StableDiffusion.Hub;
using Xunit;

namespace StableDiffusion.Hub.Tests;

[Trait("Area", "Hub")]
public sealed class HubOptionsTests
{
    private static readonly string Home = Path.Combine(Path.GetTempPath(), "home-for-tests");

    [Fact]
    public void FromEnvironment_WithNothingSet_UsesPythonDefaults()
    {
        HubOptions options = HubOptions.FromEnvironment(Env(("HOME", Home), ("USERPROFILE", Home)));

        Assert.Equal(new Uri("https://huggingface.co"), options.Endpoint);
        Assert.Equal(Path.Combine(Home, ".cache", "huggingface", "hub"), options.CacheDirectory);
        Assert.Null(options.Token);
        Assert.False(options.Offline);
        Assert.Equal(TimeSpan.FromSeconds(10), options.MetadataTimeout);
        Assert.True(options.UseSymbolicLinks);
    }

    [Fact]
    public void FromEnvironment_CacheDirectory_FollowsHfHubCacheThenLegacyThenHfHomeThenXdg()
    {
        Assert.Equal("/a/hub-cache", HubOptions.FromEnvironment(Env(("HF_HUB_CACHE", "/a/hub-cache"), ("HUGGINGFACE_HUB_CACHE", "/b"), ("HF_HOME", "/c"))).CacheDirectory);
        Assert.Equal("/b", HubOptions.FromEnvironment(Env(("HUGGINGFACE_HUB_CACHE", "/b"), ("HF_HOME", "/c"))).CacheDirectory);
        Assert.Equal(Path.Combine("/c", "hub"), HubOptions.FromEnvironment(Env(("HF_HOME", "/c"), ("XDG_CACHE_HOME", "/x"))).CacheDirectory);
        Assert.Equal(Path.Combine("/x", "huggingface", "hub"), HubOptions.FromEnvironment(Env(("XDG_CACHE_HOME", "/x"))).CacheDirectory);
    }

    [Fact]
    public void FromEnvironment_ExpandsTildeAndVariables_AsPythonExpandUserAndExpandVars()
    {
        HubOptions options = HubOptions.FromEnvironment(Env(("HOME", Home), ("USERPROFILE", Home), ("DATA", "/data"), ("HF_HOME", "~/hf"), ("HF_HUB_CACHE", "${DATA}/hub-$DATA")));

        Assert.Equal("/data/hub-/data", options.CacheDirectory);
        Assert.Equal(Home + "/hf", HubOptions.ExpandPath("~/hf", Env(("HOME", Home), ("USERPROFILE", Home))));
        Assert.Equal("/keep/$UNSET/x", HubOptions.ExpandPath("/keep/$UNSET/x", Env()));
    }

    [Fact]
    public void FromEnvironment_Token_PrefersHfTokenThenLegacyThenTokenFile()
    {
        string home = Directory.CreateTempSubdirectory("hf-home").FullName;
        try
        {
            File.WriteAllText(Path.Combine(home, "token"), "  hf_from_file\r\n");

            Assert.Equal("hf_env", HubOptions.FromEnvironment(Env(("HF_HOME", home), ("HF_TOKEN", "hf_env"), ("HUGGING_FACE_HUB_TOKEN", "hf_legacy"))).Token);
            Assert.Equal("hf_legacy", HubOptions.FromEnvironment(Env(("HF_HOME", home), ("HUGGING_FACE_HUB_TOKEN", "hf_legacy"))).Token);
            Assert.Equal("hf_from_file", HubOptions.FromEnvironment(Env(("HF_HOME", home))).Token);
            Assert.Null(HubOptions.FromEnvironment(Env(("HF_HOME", home), ("HF_TOKEN_PATH", Path.Combine(home, "absent")))).Token);
            Assert.Null(HubOptions.FromEnvironment(Env(("HF_HOME", home), ("HF_TOKEN", "hf_env"), ("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1"))).Token);
        }
        finally
        {
            Directory.Delete(home, recursive: true);
        }
    }

    [Theory]
    [InlineData("1", true)]
    [InlineData("ON", true)]
    [InlineData("yes", true)]
    [InlineData("True", true)]
    [InlineData("0", false)]
    [InlineData("false", false)]
    [InlineData("", false)]
    public void FromEnvironment_Offline_AcceptsPythonTruthyValues(string value, bool expected) =>
        Assert.Equal(expected, HubOptions.FromEnvironment(Env(("HF_HUB_OFFLINE", value))).Offline);

    [Fact]
    public void FromEnvironment_Offline_HfHubOfflineWinsOverTransformersOffline()
    {
        Assert.True(HubOptions.FromEnvironment(Env(("TRANSFORMERS_OFFLINE", "1"))).Offline);
        Assert.False(HubOptions.FromEnvironment(Env(("HF_HUB_OFFLINE", "0"), ("TRANSFORMERS_OFFLINE", "1"))).Offline);
    }

    [Fact]
    public void FromEnvironment_ReadsEndpointTimeoutsAndSymlinkSwitch()
    {
        HubOptions options = HubOptions.FromEnvironment(Env(
            ("HF_ENDPOINT", "https://mirror.example.com/hf/"), ("HF_HUB_ETAG_TIMEOUT", "3"), ("HF_HUB_DOWNLOAD_TIMEOUT", "42"), ("HF_HUB_DISABLE_SYMLINKS", "1")));

        Assert.Equal("https://mirror.example.com/hf", options.Endpoint.AbsoluteUri.TrimEnd('/'));
        Assert.Equal(TimeSpan.FromSeconds(3), options.MetadataTimeout);
        Assert.Equal(TimeSpan.FromSeconds(42), options.DownloadTimeout);
        Assert.False(options.UseSymbolicLinks);
    }

    [Theory]
    [InlineData("HF_ENDPOINT", "not a url")]
    [InlineData("HF_ENDPOINT", "ftp://example.com")]
    [InlineData("HF_HUB_ETAG_TIMEOUT", "soon")]
    [InlineData("HF_HUB_DOWNLOAD_TIMEOUT", "-1")]
    public void FromEnvironment_WithUnusableValue_ThrowsNamingTheVariable(string name, string value)
    {
        var error = Assert.Throws<InvalidOperationException>(() => HubOptions.FromEnvironment(Env((name, value))));
        Assert.Contains(name, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ToString_MasksTheToken()
    {
        var options = new HubOptions { Token = "hf_secret_value" };

        Assert.DoesNotContain("hf_secret_value", options.ToString(), StringComparison.Ordinal);
        Assert.Contains("Token = ***", options.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Client_WithInvalidOptions_ThrowsArgumentException()
    {
        Assert.Throws<ArgumentException>(() => new HubClient(new HubOptions { MaxConcurrentDownloads = 0 }));
        Assert.Throws<ArgumentException>(() => new HubClient(new HubOptions { MetadataTimeout = TimeSpan.Zero }));
        Assert.Throws<ArgumentException>(() => new HubClient(new HubOptions { CacheDirectory = " " }));
    }

    [Fact]
    public void Client_WithHandlerThatFollowsRedirects_Throws()
    {
        using var handler = new SocketsHttpHandler();
        var error = Assert.Throws<ArgumentException>(() => new HubClient(new HubOptions(), handler));
        Assert.Contains("AllowAutoRedirect", error.Message, StringComparison.Ordinal);
    }

    private static Func<string, string?> Env(params (string Name, string Value)[] variables) =>
        name => variables.FirstOrDefault(v => v.Name == name).Value;
}
