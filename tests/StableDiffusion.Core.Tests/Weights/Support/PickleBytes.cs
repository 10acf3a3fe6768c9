using System.Text;

namespace StableDiffusion.Core.Tests.Weights.Support;

/// <summary>A pickle written opcode by opcode, for the streams no pickler writes: hostile, truncated, or of other protocols.</summary>
internal sealed class PickleBytes
{
    private readonly List<byte> _bytes = [];

    /// <summary>PROTO <paramref name="version"/>.</summary>
    public static PickleBytes Protocol(int version) => new PickleBytes().Raw(0x80, (byte)version);

    public PickleBytes Raw(params byte[] bytes)
    {
        _bytes.AddRange(bytes);
        return this;
    }

    public PickleBytes Op(char opcode) => Raw((byte)opcode);

    /// <summary>GLOBAL module name.</summary>
    public PickleBytes Global(string module, string name) => Op('c').Raw(Encoding.ASCII.GetBytes($"{module}\n{name}\n"));

    /// <summary>STACK_GLOBAL, with module and name pushed as SHORT_BINUNICODE (protocol 4).</summary>
    public PickleBytes StackGlobal(string module, string name) => ShortUnicode(module).ShortUnicode(name).Raw(0x93);

    /// <summary>BINUNICODE.</summary>
    public PickleBytes Unicode(string text)
    {
        byte[] utf8 = Encoding.UTF8.GetBytes(text);
        return Op('X').Raw(BitConverter.GetBytes((uint)utf8.Length)).Raw(utf8);
    }

    /// <summary>SHORT_BINUNICODE (protocol 4).</summary>
    public PickleBytes ShortUnicode(string text)
    {
        byte[] utf8 = Encoding.UTF8.GetBytes(text);
        return Raw(0x8c, (byte)utf8.Length).Raw(utf8);
    }

    /// <summary>BININT1 for small values, BININT otherwise.</summary>
    public PickleBytes Int(int value) => value is >= 0 and <= 255 ? Raw((byte)'K', (byte)value) : Op('J').Raw(BitConverter.GetBytes(value));

    /// <summary>LONG1 with all eight bytes, for any 64-bit value.</summary>
    public PickleBytes Long(long value) => Raw(0x8a, 8).Raw(BitConverter.GetBytes(value));

    /// <summary>A tuple of integers: MARK, LONG1 each, TUPLE.</summary>
    public PickleBytes TupleOf(params long[] items)
    {
        Op('(');
        foreach (long item in items)
        {
            Long(item);
        }

        return Op('t');
    }

    /// <summary>
    /// <c>_rebuild_tensor_v2(("storage", torch.&lt;storageClass&gt;, key, "cpu", count), offset, shape, strides, False, OrderedDict())</c>,
    /// written plainly (no memo), with whatever the test wants the record to claim.
    /// </summary>
    public PickleBytes Tensor(string key, long count, long[] shape, long[] strides, long offset = 0, string storageClass = "FloatStorage") =>
        Global("torch._utils", "_rebuild_tensor_v2").Op('(')
            .Op('(').Unicode("storage").Global("torch", storageClass).Unicode(key).Unicode("cpu").Long(count).Op('t').Op('Q')
            .Long(offset).TupleOf(shape).TupleOf(strides).Raw(0x89).Global("collections", "OrderedDict").Op(')').Reduce()
            .Op('t').Reduce();

    /// <summary>PROTO 2, a dict of one entry <paramref name="key"/> whose value <paramref name="value"/> writes, STOP.</summary>
    public static byte[] DictOf(string key, Func<PickleBytes, PickleBytes> value) =>
        value(Protocol(2).Op('}').Unicode(key)).Op('s').Stop().ToArray();

    public PickleBytes Tuple1() => Raw(0x85);

    public PickleBytes Tuple2() => Raw(0x86);

    public PickleBytes Tuple3() => Raw(0x87);

    public PickleBytes Reduce() => Op('R');

    public PickleBytes Stop() => Op('.');

    public byte[] ToArray() => [.. _bytes];
}
