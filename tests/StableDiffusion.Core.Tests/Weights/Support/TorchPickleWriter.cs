using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace StableDiffusion.Core.Tests.Weights.Support;

/// <summary>
/// Writes <see cref="PythonObjects"/> as CPython's pickler does at protocol 2 for <c>torch.save</c> (PyTorch 2.x):
/// memoization by object identity (BINPUT after every string, non-empty tuple, list, dict, global and reduced object;
/// BINGET when the same object comes again), dict and list items in batches of 1000 (SETITEM/APPEND for a batch of one),
/// Python 3 names mapped to Python 2 ones as protocol 2 requires (<c>builtins</c> becomes <c>__builtin__</c>), bytes as
/// <c>_codecs.encode(text, "latin1")</c>, and each storage replaced by its persistent id
/// <c>("storage", torch.FloatStorage, key, "cpu", numel)</c> followed by BINPERSID.
/// </summary>
/// <remarks>Tensors are <c>_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, OrderedDict())</c>;
/// parameters <c>_rebuild_parameter(tensor, requires_grad, OrderedDict())</c>.</remarks>
internal sealed class TorchPickleWriter
{
    private const string StorageTag = "storage";
    private const string CpuLocation = "cpu";
    private const int BatchSize = 1000;

    private readonly MemoryStream _output = new();
    private readonly Dictionary<object, int> _memo = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<PyGlobal, int> _globals = [];
    private readonly Dictionary<SavedStorage, string> _keys = new(ReferenceEqualityComparer.Instance);
    private readonly List<SavedStorage> _storages = [];
    private int _memoCount;

    /// <summary>The storages in the order torch.save assigned their keys ("0", "1", ...).</summary>
    public IReadOnlyList<(string Key, SavedStorage Storage)> Storages => [.. _storages.Select(s => (_keys[s], s))];

    /// <summary>Pickles <paramref name="root"/>: PROTO 2, the object, STOP.</summary>
    public byte[] Write(object? root)
    {
        _output.Write([0x80, 2]);
        Save(root);
        _output.WriteByte((byte)'.');
        return _output.ToArray();
    }

    private void Save(object? value)
    {
        switch (value)
        {
            case null:
                Op('N');
                return;
            case bool flag:
                _output.WriteByte(flag ? (byte)0x88 : (byte)0x89);
                return;
            case int number:
                SaveLong(number);
                return;
            case long number:
                SaveLong(number);
                return;
            case BigInteger number:
                SaveLong(number);
                return;
            case double number:
                Op('G');
                Span<byte> bytes = stackalloc byte[8];
                BinaryPrimitives.WriteDoubleBigEndian(bytes, number);
                _output.Write(bytes);
                return;
            case SavedStorage storage:
                SavePersistentId(storage);
                return;
            case PyGlobal global:
                SaveGlobal(global);
                return;
        }

        if (_memo.TryGetValue(value, out int index))
        {
            Get(index);
            return;
        }

        switch (value)
        {
            case string text:
                byte[] utf8 = Encoding.UTF8.GetBytes(text);
                Op('X');
                WriteUInt32(utf8.Length);
                _output.Write(utf8);
                Memoize(text);
                break;
            case byte[] data:
                // Protocol 2 has no bytes opcode: Python 3 pickles bytes as _codecs.encode(latin-1 text, "latin1").
                SaveReduce(new PyGlobal("_codecs", "encode"), new PyTuple(Encoding.Latin1.GetString(data), "latin1"), data);
                break;
            case PyTuple tuple:
                SaveTuple(tuple);
                break;
            case PyList list:
                Op(']');
                Memoize(list);
                Batches(list.Items.Select(item => (item, (object?)null)), pairs: false);
                break;
            case PySet set:
                SaveReduce(new PyGlobal("builtins", "set"), new PyTuple(new PyList(set.Items)), set);
                break;
            case PyDict dict:
                Op('}');
                Memoize(dict);
                Batches(dict.Items, pairs: true);
                break;
            case PyOrderedDict ordered:
                SaveReduce(new PyGlobal("collections", "OrderedDict"), new PyTuple(), ordered);
                Batches(ordered.Items, pairs: true);
                if (ordered.Attributes is not null)
                {
                    Save(ordered.Attributes);
                    Op('b');
                }

                break;
            case SavedTensor tensor:
                SaveReduce(new PyGlobal("torch._utils", "_rebuild_tensor_v2"), new PyTuple(
                    tensor.Storage, tensor.Offset, new PyTuple([.. tensor.Shape.Cast<object?>()]), new PyTuple([.. tensor.Strides.Cast<object?>()]),
                    tensor.RequiresGrad, new PyOrderedDict()), tensor);
                break;
            case SavedParameter parameter:
                SaveReduce(
                    new PyGlobal("torch._utils", parameter.State is null ? "_rebuild_parameter" : "_rebuild_parameter_with_state"),
                    parameter.State is null
                        ? new PyTuple(parameter.Data, parameter.RequiresGrad, new PyOrderedDict())
                        : new PyTuple(parameter.Data, parameter.RequiresGrad, new PyOrderedDict(), parameter.State),
                    parameter);
                break;
            case TorchSize size:
                SaveReduce(new PyGlobal("torch", "Size"), new PyTuple(new PyTuple([.. size.Sizes.Cast<object?>()])), size);
                break;
            case NumpyFloat64 scalar:
                SaveReduce(new PyGlobal("numpy.core.multiarray", "scalar"), new PyTuple(Float64Dtype, BitConverter.GetBytes(scalar.Value)), scalar);
                break;
            case NumpyDtypeObject dtype:
                SaveReduce(new PyGlobal("numpy", "dtype"), new PyTuple(dtype.Descriptor, false, true), dtype);
                Save(new PyTuple(3, "<", null, null, null, -1, -1, 0));
                Op('b');
                break;
            default:
                throw new ArgumentException($"No pickling for {value.GetType().Name}.", nameof(value));
        }
    }

    /// <summary>numpy's float64 dtype: one object, as numpy caches it, so a second scalar fetches it from the memo.</summary>
    private static readonly NumpyDtypeObject Float64Dtype = new("f8");

    private void SaveReduce(PyGlobal function, PyTuple arguments, object result)
    {
        SaveGlobal(function);
        Save(arguments);
        Op('R');
        Memoize(result);
    }

    private void SaveTuple(PyTuple tuple)
    {
        if (tuple.Items.Length == 0)
        {
            Op(')');
            return;
        }

        if (tuple.Items.Length <= 3)
        {
            foreach (object? item in tuple.Items)
            {
                Save(item);
            }

            _output.WriteByte((byte)(0x84 + tuple.Items.Length));
        }
        else
        {
            Op('(');
            foreach (object? item in tuple.Items)
            {
                Save(item);
            }

            Op('t');
        }

        Memoize(tuple);
    }

    private void Batches(IEnumerable<(object? Key, object? Value)> items, bool pairs)
    {
        foreach ((object? Key, object? Value)[] batch in items.Chunk(BatchSize))
        {
            if (batch.Length > 1)
            {
                Op('(');
            }

            foreach ((object? key, object? value) in batch)
            {
                Save(key);
                if (pairs)
                {
                    Save(value);
                }
            }

            Op(batch.Length > 1 ? (pairs ? 'u' : 'e') : (pairs ? 's' : 'a'));
        }
    }

    /// <summary>What torch.save's persistent_id returns for a storage, pickled, then BINPERSID.</summary>
    private void SavePersistentId(SavedStorage storage)
    {
        if (!_keys.TryGetValue(storage, out string? key))
        {
            key = _keys.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
            _keys.Add(storage, key);
            _storages.Add(storage);
        }

        Save(new PyTuple(StorageTag, new PyGlobal("torch", SavedStorage.ClassName(storage.Type)), key, CpuLocation, storage.ElementCount));
        Op('Q');
    }

    private void SaveGlobal(PyGlobal global)
    {
        if (_globals.TryGetValue(global, out int index))
        {
            Get(index);
            return;
        }

        // Protocol 2 writes Python 2 names (pickle's fix_imports).
        string module = global.Module == "builtins" ? "__builtin__" : global.Module;
        _output.Write(Encoding.ASCII.GetBytes($"c{module}\n{global.Name}\n"));
        _globals.Add(global, _memoCount);
        Put(_memoCount++);
    }

    private void SaveLong(BigInteger value)
    {
        if (value >= 0 && value <= 0xFF)
        {
            _output.Write([(byte)'K', (byte)value]);
        }
        else if (value >= 0 && value <= 0xFFFF)
        {
            Op('M');
            _output.Write(BitConverter.GetBytes((ushort)value));
        }
        else if (value >= int.MinValue && value <= int.MaxValue)
        {
            Op('J');
            _output.Write(BitConverter.GetBytes((int)value));
        }
        else
        {
            byte[] bytes = value.ToByteArray(isUnsigned: false, isBigEndian: false);
            _output.Write([0x8a, (byte)bytes.Length]);
            _output.Write(bytes);
        }
    }

    private void Memoize(object value)
    {
        _memo.Add(value, _memoCount);
        Put(_memoCount++);
    }

    private void Put(int index)
    {
        if (index < 256)
        {
            _output.Write([(byte)'q', (byte)index]);
        }
        else
        {
            Op('r');
            WriteUInt32(index);
        }
    }

    private void Get(int index)
    {
        if (index < 256)
        {
            _output.Write([(byte)'h', (byte)index]);
        }
        else
        {
            Op('j');
            WriteUInt32(index);
        }
    }

    private void WriteUInt32(int value) => _output.Write(BitConverter.GetBytes((uint)value));

    private void Op(char opcode) => _output.WriteByte((byte)opcode);

    /// <summary>A numpy dtype object.</summary>
    private sealed class NumpyDtypeObject(string descriptor)
    {
        public string Descriptor { get; } = descriptor;
    }
}
