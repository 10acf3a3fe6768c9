using System.Buffers.Binary;
using System.Text;
using StableDiffusion.Core.Tests.Hardening.Support;
using StableDiffusion.Core.Tests.Weights.Support;
using StableDiffusion.Models;
using StableDiffusion.Weights;
using Xunit;

namespace StableDiffusion.Core.Tests.Weights;

/// <summary>
/// Hostile and damaged checkpoints: every one is refused with the exact exception type and a message naming the file and
/// the problem, and nothing a file names ever runs.
/// </summary>
[Trait("Area", "WeightsLoading")]
[Trait("Category", "Hardening")]
public sealed class TorchCheckpointHardeningTests : IDisposable
{
    private static readonly Type Unsafe = typeof(UnsafePickleException);
    private static readonly Type Refused = typeof(ModelLoadException);

    private static readonly Dictionary<string, BadCheckpoint> Corpus = new(StringComparer.Ordinal)
    {
        // Globals that run code, by GLOBAL (protocol 2) and STACK_GLOBAL (protocol 4).
        ["posix.system by GLOBAL"] = Calls(p => p.Global("posix", "system"), Unsafe, ["posix.system", "names"]),
        ["os.system by GLOBAL"] = Calls(p => p.Global("os", "system"), Unsafe, ["os.system"]),
        ["builtins.eval by GLOBAL"] = Calls(p => p.Global("builtins", "eval"), Unsafe, ["builtins.eval"]),
        ["__builtin__.eval by GLOBAL"] = Calls(p => p.Global("__builtin__", "eval"), Unsafe, ["__builtin__.eval"]),
        ["builtins.exec by STACK_GLOBAL"] = Calls(p => p.StackGlobal("builtins", "exec"), Unsafe, ["builtins.exec"]),
        ["subprocess.Popen by STACK_GLOBAL"] = Calls(p => p.StackGlobal("subprocess", "Popen"), Unsafe, ["subprocess.Popen"]),
        ["posix.system by STACK_GLOBAL"] = Calls(p => p.StackGlobal("posix", "system"), Unsafe, ["posix.system"]),
        ["builtins.getattr"] = Calls(p => p.Global("builtins", "getattr"), Unsafe, ["builtins.getattr"]),
        ["torch.storage._load_from_bytes (a nested unpickler)"] = Calls(p => p.Global("torch.storage", "_load_from_bytes"), Unsafe, ["torch.storage._load_from_bytes"]),
        ["torch._tensor._rebuild_from_type_v2 (a named subclass)"] = Calls(p => p.Global("torch._tensor", "_rebuild_from_type_v2"), Unsafe, ["torch._tensor._rebuild_from_type_v2"]),
        ["numpy array reconstruction"] = Calls(p => p.Global("numpy.core.multiarray", "_reconstruct"), Unsafe, ["numpy.core.multiarray._reconstruct"]),
        ["a training-code class"] = Calls(p => p.Global("ldm.models.diffusion.ddpm", "LatentDiffusion"), Unsafe, ["ldm.models.diffusion.ddpm.LatentDiffusion"]),

        // Allowed names used for something else than what torch.save writes.
        ["the ModelCheckpoint class called"] = Pickle(PickleBytes.Protocol(2).Global("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint").Op(')').Reduce().Stop(),
            Unsafe, ["calls", "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint"]),
        ["a storage class called"] = Pickle(PickleBytes.Protocol(2).Global("torch", "FloatStorage").Op(')').Reduce().Stop(), Unsafe, ["calls", "torch.FloatStorage"]),
        ["OrderedDict instantiated by NEWOBJ"] = Pickle(PickleBytes.Protocol(2).Global("collections", "OrderedDict").Op(')').Raw(0x81).Stop(),
            Unsafe, ["instantiates", "collections.OrderedDict"]),
        ["a storage class given state by BUILD"] = Pickle(PickleBytes.Protocol(2).Global("torch", "FloatStorage").Op('}').Op('b').Stop(),
            Unsafe, ["sets the state of", "torch.FloatStorage"]),
        ["INST of os.system"] = Pickle(PickleBytes.Protocol(2).Op('(').Unicode("id").Op('i').Raw(Encoding.ASCII.GetBytes("os\nsystem\n")).Stop(),
            Unsafe, ["instantiates", "os.system"]),
        ["OBJ of an allowed class"] = Pickle(PickleBytes.Protocol(2).Op('(').Global("collections", "OrderedDict").Op('o').Stop(), Unsafe, ["instantiates", "collections.OrderedDict"]),
        ["the extension registry"] = Pickle(PickleBytes.Protocol(2).Raw(0x82, 1).Stop(), Refused, ["extension registry"]),

        // Malformed pickles.
        ["unknown opcode"] = Pickle(PickleBytes.Protocol(2).Raw(0xFF).Stop(), Refused, ["opcode 0xff", "byte 2 of data.pkl"]),
        ["protocol 0 text opcode"] = Pickle(PickleBytes.Protocol(2).Op('I').Raw(Encoding.ASCII.GetBytes("1\n")).Stop(), Refused, ["opcode 0x49 ('I')"]),
        ["pickle protocol 6"] = Pickle(PickleBytes.Protocol(6).Op('N').Stop(), Refused, ["protocol 6"]),
        ["pickle cut in the middle"] = new(folder => Write(folder, TorchSave.Records(Truncate(new TorchPickleWriter().Write(StateDict()), 0.6), [("0", new byte[24])])),
            Refused, ["truncated"]),
        ["pickle without STOP"] = Pickle(PickleBytes.Protocol(2).Op('N'), Refused, ["without a STOP opcode"]),
        ["memo read before it is written"] = Pickle(PickleBytes.Protocol(2).Raw((byte)'h', 5).Stop(), Refused, ["memo slot 5"]),
        ["APPEND to a dict"] = Pickle(PickleBytes.Protocol(2).Op('}').Op('N').Op('a').Stop(), Refused, ["APPEND applies to a dict"]),
        ["SETITEMS with a key and no value"] = Pickle(PickleBytes.Protocol(2).Op('}').Op('(').Unicode("k").Op('u').Stop(), Refused, ["not key-value pairs"]),
        ["string that is not UTF-8"] = Pickle(PickleBytes.Protocol(2).Op('X').Raw(2, 0, 0, 0, 0xC3, 0x28).Stop(), Refused, ["not valid UTF-8"]),
        ["REDUCE of a string"] = Pickle(PickleBytes.Protocol(2).Unicode("eval").Op(')').Reduce().Stop(), Refused, ["REDUCE calls a str"]),
        ["persistent id that is not a storage record"] = Pickle(PickleBytes.Protocol(2).Unicode("file:///etc/passwd").Op('Q').Stop(), Refused, ["persistent id"]),
        ["_rebuild_tensor_v2 with three arguments"] = Pickle(PickleBytes.Protocol(2).Global("torch._utils", "_rebuild_tensor_v2").Op('N').Op('N').Op('N').Tuple3().Reduce().Stop(),
            Refused, ["_rebuild_tensor_v2 takes 6 or 7 arguments"]),
        ["two entries with one name"] = Saved(new PyDict(("w", SavedTensor.Of([1], 1f)), ("w", SavedTensor.Of([1], 2f))), Refused, ["both named 'w'"]),
        ["dict key that is a tuple"] = Saved(new PyDict((new PyTuple(1, 2), SavedTensor.Of([1], 1f))), Refused, ["the root dictionary has a key of type tuple"]),

        // Huge declared lengths and counts: refused before anything is allocated.
        ["BINUNICODE8 of 2^62 bytes"] = Pickle(PickleBytes.Protocol(4).Raw(0x8d).Raw(BitConverter.GetBytes(1L << 62)).Stop(), Refused, ["length of 4611686018427387904 bytes"]),
        ["BINUNICODE of 4 GiB"] = Pickle(PickleBytes.Protocol(2).Op('X').Raw(0xFF, 0xFF, 0xFF, 0xFF).Stop(), Refused, ["length of 4294967295 bytes"]),
        ["BINBYTES8 of 2^63 - 1 bytes"] = Pickle(PickleBytes.Protocol(4).Raw(0x8e).Raw(BitConverter.GetBytes(long.MaxValue)).Stop(), Refused, ["length of 9223372036854775807 bytes"]),
        ["LONG4 of 2 GiB"] = Pickle(PickleBytes.Protocol(2).Raw(0x8b, 0xFF, 0xFF, 0xFF, 0x7F).Stop(), Refused, ["length of 2147483647 bytes"]),
        ["FRAME of 2^60 bytes"] = Pickle(PickleBytes.Protocol(4).Raw(0x95).Raw(BitConverter.GetBytes(1L << 60)).Stop(), Refused, ["length of 1152921504606846976 bytes"]),
        ["tensor of 2^80 elements"] = Pickle(PickleBytes.DictOf("w", p => p.Tensor("0", 6, [1L << 40, 1L << 40], [1, 1])), Refused, ["'w'", "more elements than can exist"],
            storages: [("0", new byte[24])]),
        ["tensor of 2^62 float elements"] = Pickle(PickleBytes.DictOf("w", p => p.Tensor("0", 6, [1L << 31, 1L << 31], [0, 0])), Refused, ["'w'", "more elements than can exist"],
            storages: [("0", new byte[24])]),
        ["storage record of 2^62 floats"] = Pickle(PickleBytes.DictOf("w", p => p.Tensor("0", 1L << 62, [2], [1])), Refused, ["storage '0'", "holds 24 bytes"],
            storages: [("0", new byte[24])]),

        // Storages and tensors that disagree.
        ["storage missing from the zip"] = new(folder => Write(folder, TorchSave.Records(StateDict()).Where(r => !r.Name.EndsWith("/data/0", StringComparison.Ordinal))),
            Refused, ["storage '0'", "no entry 'archive/data/0'"]),
        ["storage entry shorter than its record"] = new(folder => Write(folder, TorchSave.Records(StateDict())
            .Select(r => r.Name.EndsWith("/data/0", StringComparison.Ordinal) ? r with { Data = new byte[8] } : r)), Refused, ["storage '0'", "holds 8 bytes"]),
        ["storage smaller than the tensor it backs"] = Saved(new PyDict(("w", SavedTensor.Contiguous(SavedStorage.Of(1f, 2f, 3f, 4f), [2, 3]))), Refused,
            ["'w'", "reaches element 5 of storage '0'", "holds only 4 elements"]),
        ["tensor offset past its storage"] = Saved(new PyDict(("w", SavedTensor.Contiguous(SavedStorage.Of(1f, 2f), [1], offset: 2))), Refused,
            ["'w'", "reaches element 2 of storage '0'"]),
        ["storage described twice differently"] = Pickle(PickleBytes.Protocol(2).Op('}').Op('(')
            .Unicode("a").Tensor("0", 6, [6], [1]).Unicode("b").Tensor("0", 3, [3], [1], storageClass: "DoubleStorage").Op('u').Stop().ToArray(),
            Refused, ["storage '0' is described twice"], storages: [("0", new byte[24])]),
        ["storage key that is a path"] = Pickle(PickleBytes.DictOf("w", p => p.Tensor("../../../etc/passwd", 1, [1], [1])), Refused, ["storage key '../../../etc/passwd'", "not a plain name"]),
        ["quantized storage"] = Pickle(PickleBytes.DictOf("w", p => p.Tensor("0", 4, [4], [1], storageClass: "QInt8Storage")), Refused, ["torch.QInt8Storage", "quantized and complex"],
            storages: [("0", new byte[4])]),

        // Deep, cyclic and exploding structures.
        ["lists nested 200 deep"] = Pickle(Nested(200), Refused, ["nest more than 100 levels"]),
        ["20,000 open MARKs"] = Pickle(PickleBytes.Protocol(2).Raw([.. Enumerable.Repeat((byte)'(', 20_000)]).Stop(), Refused, ["more than 10000 nested MARKs"]),
        ["a list that holds itself"] = Pickle(PickleBytes.Protocol(2).Op(']').Raw((byte)'q', 0, (byte)'h', 0).Op('a').Stop(), Refused, ["holds itself"]),
        ["a list shared 2^40 times over"] = Pickle(Exploding(40), Refused, ["3298534883327 values", "more than the 1000000 allowed"]),
        ["a million values pushed"] = Pickle(PickleBytes.Protocol(2).Raw([.. Enumerable.Repeat((byte)'N', 1_000_001)]).Stop(), Refused, ["more than 1000000 values on the stack"]),

        // Zip containers that lie.
        ["file cut short"] = new(folder => WriteBytes(folder, Truncate(TorchZipWriter.ToBytes(TorchSave.Records(StateDict())), 0.7)), Refused,
            ["directory at the end is missing", "incomplete download"]),
        ["no data.pkl"] = new(folder => Write(folder, TorchSave.Records(StateDict()).Where(r => !r.Name.EndsWith("data.pkl", StringComparison.Ordinal))),
            Refused, ["no 'archive/data.pkl'"]),
        ["stored entry larger than the file"] = new(folder => Write(folder, TorchSave.Records(StateDict())
            .Select(r => r.Name.EndsWith("/data/0", StringComparison.Ordinal) ? r with { DeclaredSize = 1L << 31 } : r)), Refused, ["'archive/data/0'", "declares 2147483648 bytes but occupies 24"]),
        ["zip bomb: a declared size deflate cannot reach"] = new(folder => Write(folder, TorchSave.Records(StateDict())
            .Select(r => r.Name.EndsWith("/data/0", StringComparison.Ordinal) ? r with { Compress = true, DeclaredSize = 4_000_000_000 } : r)), Refused, ["'archive/data/0'", "zip bomb"]),
        ["zip bomb: inflates past its declared size"] = new(folder => Write(folder, TorchSave.Records(StateDict())
            .Select(r => r.Name.EndsWith("/data/0", StringComparison.Ordinal) ? r with { Compress = true, Data = new byte[5_000_000], DeclaredSize = 24 } : r)),
            Refused, ["'archive/data/0'", "inflates to more than the 24 bytes"], Use: ReadEveryTensor),
        ["compressed entry that is not deflate data"] = new(folder => WriteBytes(folder, CorruptFirstDeflatedEntry(TorchZipWriter.ToBytes(TorchSave.Records(StateDict())
            .Select(r => r.Name.EndsWith("data.pkl", StringComparison.Ordinal) ? r with { Compress = true } : r)))), Refused, ["'archive/data.pkl'", "not valid deflate data"]),
        ["entry name with ../"] = WithRecord(new ZipRecord("archive/../../../home/user/.bashrc", [1]), ["'archive/../../../home/user/.bashrc'", "path traversal"]),
        ["absolute entry name"] = WithRecord(new ZipRecord("/etc/cron.d/job", [1]), ["'/etc/cron.d/job'", "path traversal"]),
        ["entry name with backslashes"] = WithRecord(new ZipRecord("archive\\..\\..\\evil.dll", [1]), ["path traversal"]),
        ["entry name with a drive letter"] = WithRecord(new ZipRecord("C:/Windows/evil.dll", [1]), ["path traversal"]),
        ["two entries with one name"] = WithRecord(new ZipRecord("archive/data.pkl", [0x80, 2, (byte)'N', (byte)'.']), ["two entries named 'archive/data.pkl'"]),
        ["zip directory past the end"] = new(folder => WriteBytes(folder, PatchEndRecord(TorchZipWriter.ToBytes(TorchSave.Records(StateDict())), 16, 0x7FFF_FFFF)), Refused,
            ["zip directory", "outside the file"]),
        ["byteorder big"] = new(folder => Write(folder, TorchSave.Records(StateDict())
            .Select(r => r.Name.EndsWith("/byteorder", StringComparison.Ordinal) ? r with { Data = "big"u8.ToArray() } : r)), Refused, ["big-endian"]),
        ["TorchScript archive"] = WithRecord(new ZipRecord("archive/constants.pkl", [0x80, 2, (byte)')', (byte)'.']), ["TorchScript"]),

        // Not a torch.save zip at all.
        ["legacy torch.save stream"] = new(folder => WriteBytes(folder, [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, (byte)'.']),
            Refused, ["legacy format", "before PyTorch 1.6", "re-saving it"]),
        ["legacy tar archive"] = new(folder => WriteBytes(folder, TarHeader()), Refused, ["tar archive"]),
        ["safetensors with a .ckpt name"] = new(folder => WriteBytes(folder, [.. BitConverter.GetBytes(19L), .. "{\"__metadata__\":{}}"u8]), Refused,
            ["is a safetensors file", "open it as safetensors"]),
        ["random bytes"] = new(folder => WriteBytes(folder, [.. Enumerable.Range(0, 4096).Select(i => (byte)(i * 37 % 251))]), Refused, ["neither a zip"]),
        ["empty file"] = new(folder => WriteBytes(folder, []), Refused, ["the file is empty"]),
        ["missing file"] = new(folder => folder.File("bad.ckpt"), Refused, ["does not exist"]),
    };

    private readonly CheckpointFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    public static TheoryData<string> Cases() => [.. Corpus.Keys];

    [Theory]
    [MemberData(nameof(Cases))]
    public void BadCheckpoint_FailsWithASpecificErrorNamingTheFileAndTheProblem(string name)
    {
        BadCheckpoint bad = Corpus[name];
        string path = bad.Write(_folder);

        Exception? error = Record.Exception(() =>
        {
            using var checkpoint = TorchCheckpoint.Open(path);
            bad.Use?.Invoke(checkpoint);
        });

        ExceptionAssert.Specific(error, bad.Exception, [path, .. bad.Message]);
        Assert.Equal(path, ((ModelLoadException)error!).Path);
    }

    [Theory]
    [InlineData("posix", "system", false)]
    [InlineData("os", "system", false)]
    [InlineData("subprocess", "call", true)]
    [InlineData("builtins", "exec", true)]
    [InlineData("builtins", "eval", false)]
    public void CodeInAPickle_NeverRuns(string module, string function, bool stackGlobal)
    {
        // Each pickle would create the marker file if any of it ran, as torch.load(weights_only=False) would.
        string marker = _folder.File($"ran-{module}-{function}");
        string argument = module is "builtins" ? $"open(r'{marker}', 'w')" : $"touch '{marker}'";
        PickleBytes pickle = PickleBytes.Protocol(stackGlobal ? 4 : 2);
        pickle = stackGlobal ? pickle.StackGlobal(module, function) : pickle.Global(module, function);
        string path = _folder.File("payload.pt");
        TorchSave.SavePickle(path, pickle.Unicode(argument).Tuple1().Reduce().Stop().ToArray());

        var error = Assert.Throws<UnsafePickleException>(() => TorchCheckpoint.Open(path));

        Assert.Equal($"{module}.{function}", error.GlobalName);
        Assert.Equal(path, error.Path);
        Assert.False(File.Exists(marker), "The pickle's payload ran.");
    }

    [Fact]
    public void RefusedGlobalInsideARealStateDict_IsFoundBeforeAnyTensorIsRead()
    {
        // A working state dict with a payload appended as one more entry: the whole file is refused.
        byte[] good = new TorchPickleWriter().Write(StateDict());
        byte[] pickle = [.. good[..^1], .. new PickleBytes().Unicode("extra").Global("posix", "system").Unicode("id").Tuple1().Reduce().Op('s').Stop().ToArray()];
        string path = _folder.File("mixed.ckpt");
        TorchZipWriter.Write(path, TorchSave.Records(pickle, [("0", new byte[24])]));

        var error = Assert.Throws<UnsafePickleException>(() => TorchCheckpoint.Open(path));

        Assert.Equal("posix.system", error.GlobalName);
        Assert.Contains("mixed.ckpt", error.Message, StringComparison.Ordinal);
    }

    private static PyDict StateDict() => new(("w", SavedTensor.Of([2, 3], 1f, 2f, 3f, 4f, 5f, 6f)));

    /// <summary>A pickle that calls a global with one string argument.</summary>
    private static BadCheckpoint Calls(Func<PickleBytes, PickleBytes> global, Type exception, string[] message) =>
        Pickle(global(PickleBytes.Protocol(4)).Unicode("id").Tuple1().Reduce().Stop(), exception, message);

    private static BadCheckpoint Pickle(PickleBytes pickle, Type exception, string[] message) => Pickle(pickle.ToArray(), exception, message);

    private static BadCheckpoint Pickle(byte[] pickle, Type exception, string[] message, (string Key, byte[] Bytes)[]? storages = null) =>
        new(folder => Write(folder, TorchSave.Records(pickle, storages ?? [])), exception, message);

    private static BadCheckpoint Saved(object root, Type exception, string[] message) => new(folder => Write(folder, TorchSave.Records(root)), exception, message);

    private static BadCheckpoint WithRecord(ZipRecord extra, string[] message) => new(folder => Write(folder, [.. TorchSave.Records(StateDict()), extra]), Refused, message);

    private static string Write(CheckpointFolder folder, IEnumerable<ZipRecord> records) => WriteBytes(folder, TorchZipWriter.ToBytes(records));

    private static string WriteBytes(CheckpointFolder folder, byte[] bytes)
    {
        string path = folder.File("bad.ckpt");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static void ReadEveryTensor(TorchCheckpoint checkpoint)
    {
        foreach (TorchCheckpointTensor tensor in checkpoint.Tensors.Values)
        {
            tensor.CopyTo(new float[tensor.ElementCount]);
        }
    }

    private static byte[] Truncate(byte[] bytes, double fraction) => bytes[..(int)(bytes.Length * fraction)];

    /// <summary>Lists nested <paramref name="depth"/> deep: EMPTY_LIST pushed that many times, then APPENDed into each other.</summary>
    private static byte[] Nested(int depth) =>
        PickleBytes.Protocol(2).Raw([.. Enumerable.Repeat((byte)']', depth)]).Raw([.. Enumerable.Repeat((byte)'a', depth - 1)]).Stop().ToArray();

    /// <summary>x0 = [1]; x(i+1) = [x(i), x(i)]: a pickle of a few hundred bytes whose flattening would visit 2^levels values.</summary>
    private static byte[] Exploding(int levels)
    {
        PickleBytes pickle = PickleBytes.Protocol(2).Op(']').Int(1).Op('a');
        for (int level = 0; level < levels; level++)
        {
            pickle.Raw((byte)'q', 0).Op(']').Op('(').Raw((byte)'h', 0, (byte)'h', 0).Op('e');
        }

        return pickle.Stop().ToArray();
    }

    /// <summary>Overwrites a 32-bit field of the classic end-of-central-directory record.</summary>
    private static byte[] PatchEndRecord(byte[] zip, int offset, uint value)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(zip.AsSpan(zip.Length - 22 + offset), value);
        // Drop the zip64 locator's signature so the classic record is the one read.
        zip.AsSpan(zip.Length - 22 - 20, 4).Clear();
        return zip;
    }

    /// <summary>Replaces the data of the first deflated entry (data.pkl) with bytes that are not a deflate stream.</summary>
    private static byte[] CorruptFirstDeflatedEntry(byte[] zip)
    {
        int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(zip.AsSpan(26));
        int extraLength = BinaryPrimitives.ReadUInt16LittleEndian(zip.AsSpan(28));
        int compressed = BinaryPrimitives.ReadInt32LittleEndian(zip.AsSpan(18));
        zip.AsSpan(30 + nameLength + extraLength, compressed).Fill(0xFF);
        return zip;
    }

    private static byte[] TarHeader()
    {
        byte[] tar = new byte[1024];
        "storages"u8.CopyTo(tar);
        "ustar"u8.CopyTo(tar.AsSpan(257));
        return tar;
    }

    /// <summary>A way to write a bad checkpoint, and the error that must come out.</summary>
    /// <param name="Write">Writes the file into the folder and returns its path.</param>
    /// <param name="Exception">The exact exception type expected.</param>
    /// <param name="Message">What the message must name, besides the file's path.</param>
    /// <param name="Use">What to do with the opened checkpoint (default: nothing; opening must fail).</param>
    private sealed record BadCheckpoint(Func<CheckpointFolder, string> Write, Type Exception, string[] Message, Action<TorchCheckpoint>? Use = null);
}
