using System.Text;
using StableDiffusion.Core.Tests.Weights.Support;
using Xunit;

namespace StableDiffusion.Core.Tests.Weights;

/// <summary>The test pickle writer against the bytes CPython and PyTorch really write, so the fixtures it makes are faithful.</summary>
[Trait("Area", "WeightsLoading")]
public sealed class TorchPickleWriterTests
{
    [Fact]
    public void StateDictOfOneTensor_MatchesTorchSave()
    {
        // data.pkl of torch.save({"a": torch.tensor([1.0, 2.0])}, f) with PyTorch 2.x (protocol 2): note the storage
        // record pickled as a memoized tuple before BINPERSID, and the empty OrderedDict of backward hooks.
        byte[] expected = Encoding.Latin1.GetBytes(
            "\u0080\u0002}q\u0000X\u0001\u0000\u0000\u0000aq\u0001ctorch._utils\n_rebuild_tensor_v2\nq\u0002((X\u0007\u0000\u0000\u0000storageq\u0003" +
            "ctorch\nFloatStorage\nq\u0004X\u0001\u0000\u0000\u00000q\u0005X\u0003\u0000\u0000\u0000cpuq\u0006K\u0002tq\u0007QK\u0000K\u0002\u0085q\u0008K\u0001\u0085q\t" +
            "\u0089ccollections\nOrderedDict\nq\n)Rq\u000Btq\u000CRq\rs.");

        byte[] pickle = new TorchPickleWriter().Write(new PyDict(("a", SavedTensor.Of([2], 1f, 2f))));

        Assert.Equal(expected, pickle);
    }

    [Fact]
    public void SecondTensorOfTheSameStorage_FetchesTheRepeatedObjectsFromTheMemo()
    {
        var storage = SavedStorage.Of(1f, 2f, 3f, 4f);
        var writer = new TorchPickleWriter();

        byte[] pickle = writer.Write(new PyDict(("a", SavedTensor.Contiguous(storage, [2])), ("b", SavedTensor.Contiguous(storage, [2], offset: 2))));

        // The second storage record reuses "storage", torch.FloatStorage, the key "0" and "cpu" through BINGET.
        string text = Encoding.Latin1.GetString(pickle);
        Assert.Equal(1, Count(text, "X\u0007\u0000\u0000\u0000storage"));
        Assert.Equal(1, Count(text, "FloatStorage"));
        Assert.Contains("(h\u0003h\u0004h\u0005h\u0006K\u0004tq", text, StringComparison.Ordinal);
        Assert.Single(writer.Storages);
    }

    private static int Count(string text, string part) => (text.Length - text.Replace(part, "", StringComparison.Ordinal).Length) / part.Length;
}
