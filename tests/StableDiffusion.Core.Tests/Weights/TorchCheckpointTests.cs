using System.Numerics;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime.Tensors;
using StableDiffusion.Core.Tests.Weights.Support;
using StableDiffusion.Weights;
using Xunit;

namespace StableDiffusion.Core.Tests.Weights;

/// <summary>
/// Checkpoints as torch.save writes them (made by the test writer, which pickles as CPython does at protocol 2 and zips
/// as PyTorch's stream writer does): state dicts of each element type, shared storages, strided views, Lightning and
/// textual inversion layouts, and the opcodes of newer pickle protocols.
/// </summary>
[Trait("Area", "WeightsLoading")]
public sealed class TorchCheckpointTests : IDisposable
{
    private readonly CheckpointFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void Float32StateDict_ReadsNamesLayoutAndValues()
    {
        float[] weight = [1.5f, -2f, 3.25f, 0f, 1e-8f, -7f];
        var metadata = new PyDict(("_metadata", new PyOrderedDict(("", new PyDict(("version", 1))), ("conv", new PyDict(("version", 1))))));
        string path = Save("model.bin", new PyOrderedDict(
            [("conv.weight", SavedTensor.Of([2, 3], weight)), ("conv.bias", SavedTensor.Of([2], 0.5f, -0.5f))], metadata));

        using var checkpoint = TorchCheckpoint.Open(path);

        Assert.Equal(path, checkpoint.Path);
        Assert.Equal(["conv.bias", "conv.weight"], checkpoint.Tensors.Keys.Order());
        Assert.Equal(checkpoint.Tensors.Keys.Order(), checkpoint.StateDict.Keys.Order());
        Assert.Empty(checkpoint.Values); // the state dict's _metadata is an attribute, not an entry
        TorchCheckpointTensor tensor = checkpoint.StateDict["conv.weight"];
        Assert.Equal("conv.weight", tensor.Name);
        Assert.Equal(TensorElementType.Float, tensor.ElementType);
        Assert.Equal([2L, 3L], tensor.Shape);
        Assert.Equal([3L, 1L], tensor.Strides);
        Assert.Equal(0, tensor.StorageOffset);
        Assert.Equal(6, tensor.ElementCount);
        Assert.Equal(24, tensor.ByteCount);
        Assert.True(tensor.IsContiguous);
        Assert.Equal(weight, ReadFloats(tensor));
        Assert.True(tensor.TryGetBytes(out ReadOnlySpan<byte> bytes));
        Assert.Equal(MemoryMarshal.AsBytes(weight.AsSpan()).ToArray(), bytes.ToArray());
        Assert.Equal([0.5f, -0.5f], ReadFloats(checkpoint.Tensors["conv.bias"]));
    }

    [Fact]
    public void Float16Tensor_CopiesExactlyToHalfAndWidensToFloat()
    {
        Half[] values = [(Half)0.1f, (Half)(-65504f), Half.Epsilon, (Half)3f];
        string path = Save("half.bin", new PyDict(("w", SavedTensor.Contiguous(SavedStorage.Of(values), [4]))));

        using var checkpoint = TorchCheckpoint.Open(path);
        TorchCheckpointTensor tensor = checkpoint.Tensors["w"];

        Assert.Equal(TensorElementType.Float16, tensor.ElementType);
        Assert.Equal(8, tensor.ByteCount);
        Half[] halves = new Half[4];
        tensor.CopyTo(halves);
        Assert.Equal(values, halves);
        Assert.Equal(values.Select(v => (float)v), ReadFloats(tensor));
    }

    [Fact]
    public void BFloat16Tensor_WidensExactlyToFloatAndRoundsToHalf()
    {
        // 1.5, -2, +infinity and 1/3 rounded to bfloat16 (0x3EAB = 0.333984375).
        string path = Save("bf16.bin", new PyDict(("w", SavedTensor.Contiguous(SavedStorage.BFloat16(0x3FC0, 0xC000, 0x7F80, 0x3EAB), [2, 2]))));

        using var checkpoint = TorchCheckpoint.Open(path);
        TorchCheckpointTensor tensor = checkpoint.Tensors["w"];

        Assert.Equal(TensorElementType.BFloat16, tensor.ElementType);
        Assert.Equal([1.5f, -2f, float.PositiveInfinity, 0.333984375f], ReadFloats(tensor));
        Half[] halves = new Half[4];
        tensor.CopyTo(halves);
        Assert.Equal([(Half)1.5f, (Half)(-2f), Half.PositiveInfinity, (Half)0.333984375f], halves);
    }

    [Fact]
    public void Float64Tensor_NarrowsToFloat()
    {
        string path = Save("double.bin", new PyDict(("w", SavedTensor.Contiguous(SavedStorage.Of(0.1, -1e300, 2.5), [3]))));

        using var checkpoint = TorchCheckpoint.Open(path);

        Assert.Equal(TensorElementType.Double, checkpoint.Tensors["w"].ElementType);
        Assert.Equal([0.1f, float.NegativeInfinity, 2.5f], ReadFloats(checkpoint.Tensors["w"]));
        Half[] halves = new Half[3];
        checkpoint.Tensors["w"].CopyTo(halves);
        Assert.Equal([(Half)0.1, Half.NegativeInfinity, (Half)2.5], halves);
    }

    [Fact]
    public void Int64Tensor_ReadsAsBytesAndRefusesFloatConversion()
    {
        // CLIP text encoder state dicts hold their position ids as int64.
        long[] ids = [0, 1, 2, 76, long.MaxValue, -1];
        string path = Save("clip.bin", new PyOrderedDict(("text_model.embeddings.position_ids", SavedTensor.Contiguous(SavedStorage.Of(ids), [1, 6]))));

        using var checkpoint = TorchCheckpoint.Open(path);
        TorchCheckpointTensor tensor = checkpoint.Tensors["text_model.embeddings.position_ids"];

        Assert.Equal(TensorElementType.Int64, tensor.ElementType);
        byte[] bytes = new byte[tensor.ByteCount];
        tensor.CopyTo(bytes);
        Assert.Equal(ids, MemoryMarshal.Cast<byte, long>(bytes).ToArray());
        var error = Assert.Throws<InvalidOperationException>(() => tensor.CopyTo(new float[6]));
        Assert.Contains("CopyTo(Span<byte>)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SharedStorage_ViewsWithOffsetsStridesAndBroadcastsReadTheRightElements()
    {
        // One storage of 0..11 behind five views: two row blocks (a fused projection split in two), a transpose saved
        // without .contiguous(), a broadcast row (stride 0), and a column with a size-1 dimension of arbitrary stride.
        var storage = SavedStorage.Of([.. Enumerable.Range(0, 12).Select(i => (float)i)]);
        string path = Save("shared.pt", new PyOrderedDict(
            ("q", SavedTensor.Contiguous(storage, [2, 3])),
            ("k", SavedTensor.Contiguous(storage, [2, 3], offset: 6)),
            ("q_t", new SavedTensor(storage, [3, 2], [1, 3])),
            ("row", new SavedTensor(storage, [2, 3], [0, 1], offset: 3)),
            ("column", new SavedTensor(storage, [3, 1], [4, 99], offset: 1))));

        using var checkpoint = TorchCheckpoint.Open(path);

        Assert.Equal([0f, 1, 2, 3, 4, 5], ReadFloats(checkpoint.Tensors["q"]));
        Assert.Equal([6f, 7, 8, 9, 10, 11], ReadFloats(checkpoint.Tensors["k"]));
        Assert.True(checkpoint.Tensors["k"].TryGetBytes(out ReadOnlySpan<byte> k));
        Assert.Equal([6f, 7, 8, 9, 10, 11], MemoryMarshal.Cast<byte, float>(k).ToArray());

        TorchCheckpointTensor transposed = checkpoint.Tensors["q_t"];
        Assert.False(transposed.IsContiguous);
        Assert.False(transposed.TryGetBytes(out _));
        Assert.Equal([0f, 3, 1, 4, 2, 5], ReadFloats(transposed));
        byte[] raw = new byte[transposed.ByteCount];
        transposed.CopyTo(raw);
        Assert.Equal([0f, 3, 1, 4, 2, 5], MemoryMarshal.Cast<byte, float>(raw).ToArray());

        Assert.False(checkpoint.Tensors["row"].IsContiguous);
        Assert.Equal([3f, 4, 5, 3, 4, 5], ReadFloats(checkpoint.Tensors["row"]));
        Half[] halves = new Half[6];
        checkpoint.Tensors["row"].CopyTo(halves);
        Assert.Equal([3f, 4, 5, 3, 4, 5], halves.Select(h => (float)h));

        Assert.False(checkpoint.Tensors["column"].IsContiguous);
        Assert.Equal([1f, 5, 9], ReadFloats(checkpoint.Tensors["column"]));
    }

    [Fact]
    public void LightningCheckpoint_StateDictIsUnwrappedAndMetadataKept()
    {
        // The shape of Stable Diffusion's original .ckpt files: a plain dict around the state dict, with Lightning's
        // bookkeeping, a callbacks dict keyed by the ModelCheckpoint class itself, and optimizer states.
        var modelCheckpoint = new PyGlobal("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint");
        string path = Save("sd-v1.ckpt", new PyDict(
            ("epoch", 5),
            ("global_step", 470000),
            ("pytorch-lightning_version", "1.4.2"),
            ("state_dict", new PyOrderedDict(
                ("model.diffusion_model.out.2.bias", SavedTensor.Of([4], 1f, 2f, 3f, 4f)),
                ("first_stage_model.decoder.conv_out.bias", SavedTensor.Of([3], 5f, 6f, 7f)))),
            ("callbacks", new PyDict((modelCheckpoint, new PyDict(("best_model_score", null), ("best_model_path", "")))) ),
            ("optimizer_states", new PyList(new PyDict(
                ("state", new PyDict((0, new PyDict(("step", 10), ("exp_avg", SavedTensor.Of([4], 0f, 0f, 0f, 1f)))))),
                ("param_groups", new PyList(new PyDict(("lr", 1e-4), ("betas", new PyTuple(0.9, 0.999)), ("params", new PyList(0)))))))),
            ("lr_schedulers", new PyList())));

        using var checkpoint = TorchCheckpoint.Open(path);

        Assert.Equal(["first_stage_model.decoder.conv_out.bias", "model.diffusion_model.out.2.bias"], checkpoint.StateDict.Keys.Order());
        Assert.Equal([1f, 2f, 3f, 4f], ReadFloats(checkpoint.StateDict["model.diffusion_model.out.2.bias"]));
        Assert.Equal("state_dict.model.diffusion_model.out.2.bias", checkpoint.StateDict["model.diffusion_model.out.2.bias"].Name);
        Assert.Same(checkpoint.Tensors["state_dict.model.diffusion_model.out.2.bias"], checkpoint.StateDict["model.diffusion_model.out.2.bias"]);
        Assert.Equal([0f, 0f, 0f, 1f], ReadFloats(checkpoint.Tensors["optimizer_states.0.state.0.exp_avg"]));
        Assert.Equal(3, checkpoint.Tensors.Count);
        Assert.Equal(470000L, checkpoint.Values["global_step"]);
        Assert.Equal(5L, checkpoint.Values["epoch"]);
        Assert.Equal("1.4.2", checkpoint.Values["pytorch-lightning_version"]);
        Assert.Equal(1e-4, checkpoint.Values["optimizer_states.0.param_groups.0.lr"]);
        Assert.Equal(0.999, checkpoint.Values["optimizer_states.0.param_groups.0.betas.1"]);
        Assert.Equal("", checkpoint.Values["callbacks.pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint.best_model_path"]);
        Assert.DoesNotContain("callbacks.pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint.best_model_score", checkpoint.Values.Keys);
    }

    [Fact]
    public void DoublyWrappedStateDict_IsUnwrappedAsDiffusersDoes()
    {
        string path = Save("wrapped.ckpt", new PyDict(("state_dict", new PyDict(("state_dict", new PyDict(("w", SavedTensor.Of([1], 9f))))))));

        using var checkpoint = TorchCheckpoint.Open(path);

        Assert.Equal(["w"], checkpoint.StateDict.Keys);
        Assert.Equal(["state_dict.state_dict.w"], checkpoint.Tensors.Keys);
        Assert.Equal([9f], ReadFloats(checkpoint.StateDict["w"]));
    }

    [Fact]
    public void Parameters_AreReadAsTheirTensors()
    {
        string path = Save("params.bin", new PyOrderedDict(
            ("linear.weight", new SavedParameter(SavedTensor.Of([2], 1f, 2f))),
            ("linear.bias", new SavedParameter(SavedTensor.Of([1], 3f), requiresGrad: false, state: new PyDict(("tag", "bias"))))));

        using var checkpoint = TorchCheckpoint.Open(path);

        Assert.Equal([1f, 2f], ReadFloats(checkpoint.Tensors["linear.weight"]));
        Assert.Equal([3f], ReadFloats(checkpoint.Tensors["linear.bias"]));
        Assert.Empty(checkpoint.Values);
    }

    [Fact]
    public void TextualInversionEmbedding_ReadsTheVectorsAndTheirMetadata()
    {
        // The layout of Automatic1111's textual inversion .pt files.
        float[] vectors = [.. Enumerable.Range(0, 2 * 8).Select(i => i / 16f)];
        string path = Save("my-style.pt", new PyDict(
            ("string_to_token", new PyDict(("*", SavedTensor.Contiguous(SavedStorage.Of(265L), [])))),
            ("string_to_param", new PyDict(("*", new SavedParameter(SavedTensor.Of([2, 8], vectors))))),
            ("name", "my-style"),
            ("step", 3000),
            ("sd_checkpoint", "7460a6fa"),
            ("sd_checkpoint_name", "v1-5-pruned-emaonly")));

        using var checkpoint = TorchCheckpoint.Open(path);

        TorchCheckpointTensor embedding = checkpoint.StateDict["string_to_param.*"];
        Assert.Equal([2L, 8L], embedding.Shape);
        Assert.Equal(vectors, ReadFloats(embedding));
        TorchCheckpointTensor token = checkpoint.Tensors["string_to_token.*"];
        Assert.Empty(token.Shape);
        Assert.Equal(1, token.ElementCount);
        byte[] tokenBytes = new byte[8];
        token.CopyTo(tokenBytes);
        Assert.Equal(265L, BitConverter.ToInt64(tokenBytes));
        Assert.Equal("my-style", checkpoint.Values["name"]);
        Assert.Equal(3000L, checkpoint.Values["step"]);
        Assert.Equal("v1-5-pruned-emaonly", checkpoint.Values["sd_checkpoint_name"]);
    }

    [Fact]
    public void MetadataValues_KeepTheirPythonTypes()
    {
        string path = Save("values.pt", new PyDict(
            ("negative", -5), ("wide", 1L << 40), ("most_negative", long.MinValue), ("rate", 2.5e-6), ("flag", true), ("nothing", null),
            ("blob", new byte[] { 0, 200, 255 }), ("ids", new PySet(3, 4)), ("best", new NumpyFloat64(0.25)), ("second_best", new NumpyFloat64(-0.5)),
            ("label", "snow ☃"), ("huge", BigInteger.Pow(2, 70)), ("shape", new TorchSize(2, 3))));

        using var checkpoint = TorchCheckpoint.Open(path);

        Assert.Equal(-5L, checkpoint.Values["negative"]);
        Assert.Equal(1L << 40, checkpoint.Values["wide"]);
        Assert.Equal(long.MinValue, checkpoint.Values["most_negative"]);
        Assert.Equal(2.5e-6, checkpoint.Values["rate"]);
        Assert.Equal(true, checkpoint.Values["flag"]);
        Assert.DoesNotContain("nothing", checkpoint.Values.Keys);
        Assert.Equal(new byte[] { 0, 200, 255 }, checkpoint.Values["blob"]);
        Assert.Equal(3L, checkpoint.Values["ids.0"]);
        Assert.Equal(4L, checkpoint.Values["ids.1"]);
        Assert.Equal(0.25, checkpoint.Values["best"]);
        Assert.Equal(-0.5, checkpoint.Values["second_best"]);
        Assert.Equal("snow ☃", checkpoint.Values["label"]);
        Assert.Equal(BigInteger.Pow(2, 70), checkpoint.Values["huge"]);
        Assert.Equal(2L, checkpoint.Values["shape.0"]);
        Assert.Equal(3L, checkpoint.Values["shape.1"]);
        Assert.Empty(checkpoint.Tensors);
    }

    [Fact]
    public void ManyTensors_CrossTheBatchAndOneByteMemoBoundaries()
    {
        // 1,500 entries: SETITEMS in batches of 1,000 and 500, and memo indices past 255 (LONG_BINPUT, LONG_BINGET).
        var items = Enumerable.Range(0, 1500).Select(i => ((object?)$"layer.{i}.weight", (object?)SavedTensor.Of([2], i, -i))).ToArray();
        string path = Save("many.bin", new PyOrderedDict(items));

        using var checkpoint = TorchCheckpoint.Open(path);

        Assert.Equal(1500, checkpoint.Tensors.Count);
        foreach (int i in (int[])[0, 1, 255, 256, 999, 1000, 1499])
        {
            Assert.Equal([(float)i, -i], ReadFloats(checkpoint.Tensors[$"layer.{i}.weight"]));
        }
    }

    [Fact]
    public void ScalarAndEmptyTensors_AreRead()
    {
        string path = Save("shapes.pt", new PyDict(
            ("scalar", SavedTensor.Contiguous(SavedStorage.Of(42f), [])),
            ("empty", SavedTensor.Contiguous(SavedStorage.Of(Array.Empty<float>()), [0, 3]))));

        using var checkpoint = TorchCheckpoint.Open(path);

        Assert.Equal([42f], ReadFloats(checkpoint.Tensors["scalar"]));
        TorchCheckpointTensor empty = checkpoint.Tensors["empty"];
        Assert.Equal(0, empty.ElementCount);
        Assert.True(empty.IsContiguous);
        Assert.True(empty.TryGetBytes(out ReadOnlySpan<byte> bytes));
        Assert.Equal(0, bytes.Length);
        empty.CopyTo(Span<float>.Empty);
    }

    [Fact]
    public void CompressedEntries_AreInflatedWhenRead()
    {
        float[] values = [.. Enumerable.Range(0, 1000).Select(i => MathF.Sin(i))];
        List<ZipRecord> records = TorchSave.Records(new PyOrderedDict(("w", SavedTensor.Of([10, 100], values))));
        string path = _folder.File("zipped.ckpt");
        TorchZipWriter.Write(path, records.Select(r => r with { Compress = true }));

        using var checkpoint = TorchCheckpoint.Open(path);

        Assert.Equal(values, ReadFloats(checkpoint.Tensors["w"]));
        Assert.True(checkpoint.Tensors["w"].TryGetBytes(out ReadOnlySpan<byte> bytes));
        Assert.Equal(4000, bytes.Length);
    }

    [Fact]
    public void ArchiveFolder_NamedAfterTheSavedFile_IsFound()
    {
        // torch.save(obj, "model.ckpt") names the folder after the file; renaming the file later changes nothing.
        string path = _folder.File("renamed.ckpt");
        TorchSave.Save(path, new PyDict(("w", SavedTensor.Of([1], 1f))), archive: "model");

        using var checkpoint = TorchCheckpoint.Open(path);

        Assert.Equal([1f], ReadFloats(checkpoint.Tensors["w"]));
    }

    [Fact]
    public void NewerPickleProtocols_FramesShortStringsStackGlobalsAndSetsAreRead()
    {
        // Protocol 4 as Python writes it: a FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL, SHORT_BINBYTES, EMPTY_SET.
        byte[] body = new PickleBytes()
            .Op('}').Raw(0x94).Op('(')
            .ShortUnicode("w").Raw(0x94)
            .StackGlobal("torch._utils", "_rebuild_tensor_v2").Raw(0x94)
            .Op('(')
            .Op('(').ShortUnicode("storage").StackGlobal("torch", "FloatStorage").ShortUnicode("0").ShortUnicode("cpu").Int(2).Op('t').Op('Q')
            .Int(0).Int(2).Tuple1().Int(1).Tuple1().Raw(0x89).StackGlobal("collections", "OrderedDict").Op(')').Reduce()
            .Op('t').Reduce()
            .ShortUnicode("blob").Raw((byte)'C', 3, (byte)'a', (byte)'b', (byte)'c')
            .ShortUnicode("tags").Raw(0x8f).Op('(').Int(7).Raw(0x90)
            .ShortUnicode("again").Raw((byte)'h', 1)
            .Op('u').Stop().ToArray();
        byte[] pickle = [.. PickleBytes.Protocol(4).Raw(0x95).Raw(BitConverter.GetBytes((long)body.Length)).ToArray(), .. body];
        string path = _folder.File("protocol4.pt");
        TorchZipWriter.Write(path, TorchSave.Records(pickle, [("0", MemoryMarshal.AsBytes([0.5f, 1.5f]).ToArray())]));

        using var checkpoint = TorchCheckpoint.Open(path);

        Assert.Equal([0.5f, 1.5f], ReadFloats(checkpoint.Tensors["w"]));
        Assert.Equal("abc"u8.ToArray(), checkpoint.Values["blob"]);
        Assert.Equal(7L, checkpoint.Values["tags.0"]);
        Assert.Equal("w", checkpoint.Values["again"]);
    }

    [Fact]
    public void OlderAndRarerOpcodes_AreRead()
    {
        // Python 2 strings, every bytes opcode, LONG4, LIST, DICT, FROZENSET, POP and POP_MARK.
        byte[] pickle = PickleBytes.Protocol(2).Op('(')
            .Raw((byte)'U', 1, (byte)'a').Int(1)
            .Raw((byte)'T', 1, 0, 0, 0, (byte)'b').Raw((byte)'B', 2, 0, 0, 0, (byte)'x', (byte)'y')
            .Raw(0x8d, 1, 0, 0, 0, 0, 0, 0, 0, (byte)'c').Raw(0x8e, 1, 0, 0, 0, 0, 0, 0, 0, (byte)'z')
            .ShortUnicode("d").Raw(0x96, 1, 0, 0, 0, 0, 0, 0, 0, (byte)'w')
            .ShortUnicode("e").Raw(0x8b, 1, 0, 0, 0, 0xFE)
            .ShortUnicode("f").Op('(').Int(1).Int(2).Op('l')
            .ShortUnicode("g").Op('(').Int(3).Raw(0x91)
            .ShortUnicode("h").Op('N').Op('0').Int(4)
            .ShortUnicode("i").Op('(').Op('N').Op('N').Op('1').Int(5)
            .Op('d').Stop().ToArray();
        string path = _folder.File("opcodes.pt");
        TorchSave.SavePickle(path, pickle);

        using var checkpoint = TorchCheckpoint.Open(path);

        Assert.Equal(1L, checkpoint.Values["a"]);
        Assert.Equal("xy"u8.ToArray(), checkpoint.Values["b"]);
        Assert.Equal("z"u8.ToArray(), checkpoint.Values["c"]);
        Assert.Equal("w"u8.ToArray(), checkpoint.Values["d"]);
        Assert.Equal(-2L, checkpoint.Values["e"]);
        Assert.Equal(1L, checkpoint.Values["f.0"]);
        Assert.Equal(2L, checkpoint.Values["f.1"]);
        Assert.Equal(3L, checkpoint.Values["g.0"]);
        Assert.Equal(4L, checkpoint.Values["h"]);
        Assert.Equal(5L, checkpoint.Values["i"]);
        Assert.Equal(10, checkpoint.Values.Count);
    }

    [Fact]
    public void Disposed_TensorDataCanNoLongerBeRead()
    {
        string path = Save("closed.bin", new PyDict(("w", SavedTensor.Of([1], 1f))));
        var checkpoint = TorchCheckpoint.Open(path);
        TorchCheckpointTensor tensor = checkpoint.Tensors["w"];

        checkpoint.Dispose();

        Assert.Throws<ObjectDisposedException>(() => tensor.CopyTo(new float[1]));
        Assert.Equal([1L], tensor.Shape);
    }

    [Fact]
    public void CopyTo_WrongDestinationLength_IsAnArgumentError()
    {
        string path = Save("lengths.bin", new PyDict(("w", SavedTensor.Of([2], 1f, 2f))));
        using var checkpoint = TorchCheckpoint.Open(path);

        var error = Assert.Throws<ArgumentException>(() => checkpoint.Tensors["w"].CopyTo(new float[3]));

        Assert.Equal("destination", error.ParamName);
        Assert.Contains("'w' has 2", error.Message, StringComparison.Ordinal);
    }

    private string Save(string name, object root)
    {
        string path = _folder.File(name);
        TorchSave.Save(path, root);
        return path;
    }

    private static float[] ReadFloats(TorchCheckpointTensor tensor)
    {
        float[] values = new float[tensor.ElementCount];
        tensor.CopyTo(values);
        return values;
    }
}
