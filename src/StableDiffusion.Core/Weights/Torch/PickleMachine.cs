using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace StableDiffusion.Weights.Torch;

/// <summary>
/// A pickle virtual machine for what <c>torch.save</c> writes (protocols 2 to 5): it builds plain data and torch's tensor
/// records, resolves globals only through <see cref="PickleGlobals"/>, and interprets those itself. Nothing a file names is
/// ever imported, reflected over, called or instantiated; any other global, and every opcode that would create an
/// arbitrary object (INST, OBJ, NEWOBJ, NEWOBJ_EX, the extension registry), refuses the file.
/// </summary>
/// <remarks>
/// Written by hand because no .NET library reads pickles without being able to construct arbitrary types. Every count
/// and length is bounded by <see cref="CheckpointLimits"/> and checked against the bytes left before anything is
/// allocated, so a hostile pickle fails in proportion to its own size.
/// </remarks>
internal sealed class PickleMachine
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly byte[] _data;
    private readonly string _path;
    private readonly Func<string, PickleGlobal, long, TorchStorage> _loadStorage;
    private readonly List<object?> _stack = [];
    private readonly Stack<int> _marks = new();
    private readonly Dictionary<long, object?> _memo = [];
    private int _position;
    private int _opcodeStart;
    private int _created;

    private PickleMachine(byte[] data, string path, Func<string, PickleGlobal, long, TorchStorage> loadStorage)
    {
        _data = data;
        _path = path;
        _loadStorage = loadStorage;
    }

    /// <summary>Runs <paramref name="pickle"/> and returns the object it describes.</summary>
    /// <param name="pickle">The pickle stream (a checkpoint's <c>data.pkl</c>).</param>
    /// <param name="path">The checkpoint, for messages.</param>
    /// <param name="loadStorage">Resolves a storage record (key, storage class, element count) to its zip entry.</param>
    /// <exception cref="UnsafePickleException">The pickle names a global outside the allow-list.</exception>
    /// <exception cref="Models.ModelLoadException">The pickle is malformed, truncated or exceeds a limit.</exception>
    public static object? Run(byte[] pickle, string path, Func<string, PickleGlobal, long, TorchStorage> loadStorage) =>
        new PickleMachine(pickle, path, loadStorage).Execute();

    private object? Execute()
    {
        while (true)
        {
            _opcodeStart = _position;
            byte opcode = ReadByte();
            switch (opcode)
            {
                case 0x80: // PROTO
                    byte protocol = ReadByte();
                    if (protocol > 5)
                    {
                        throw Damaged($"pickle protocol {protocol} does not exist (the newest is 5)");
                    }

                    break;
                case 0x95: // FRAME: a length prefix for buffered readers; the data is already in memory.
                    ReadLength(8);
                    break;
                case (byte)'.': // STOP
                    if (_stack.Count == 0)
                    {
                        throw Damaged("STOP with nothing on the stack");
                    }

                    return _stack[^1];

                case (byte)'(': // MARK
                    if (_marks.Count >= CheckpointLimits.MaxMarkDepth)
                    {
                        throw Damaged($"more than {CheckpointLimits.MaxMarkDepth} nested MARKs");
                    }

                    _marks.Push(_stack.Count);
                    break;
                case (byte)'0': // POP
                    if (_marks.Count > 0 && _marks.Peek() == _stack.Count)
                    {
                        _marks.Pop();
                    }
                    else
                    {
                        Pop();
                    }

                    break;
                case (byte)'1': // POP_MARK
                    PopMark();
                    break;

                case (byte)'N': // NONE
                    Push(null);
                    break;
                case 0x88: // NEWTRUE
                    Push(true);
                    break;
                case 0x89: // NEWFALSE
                    Push(false);
                    break;
                case (byte)'J': // BININT
                    Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4)));
                    break;
                case (byte)'K': // BININT1
                    Push((long)ReadByte());
                    break;
                case (byte)'M': // BININT2
                    Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2)));
                    break;
                case 0x8a: // LONG1
                    Push(ReadInteger(ReadByte()));
                    break;
                case 0x8b: // LONG4
                    Push(ReadInteger(ReadLength(4)));
                    break;
                case (byte)'G': // BINFLOAT (big-endian)
                    Push(BinaryPrimitives.ReadDoubleBigEndian(Take(8)));
                    break;

                case 0x8c: // SHORT_BINUNICODE
                    Push(ReadUtf8(ReadByte()));
                    break;
                case (byte)'X': // BINUNICODE
                    Push(ReadUtf8(ReadLength(4)));
                    break;
                case 0x8d: // BINUNICODE8
                    Push(ReadUtf8(ReadLength(8)));
                    break;
                case (byte)'U': // SHORT_BINSTRING (a Python 2 str)
                    Push(Encoding.Latin1.GetString(Take(ReadByte())));
                    break;
                case (byte)'T': // BINSTRING
                    Push(Encoding.Latin1.GetString(Take(ReadLength(4))));
                    break;
                case (byte)'C': // SHORT_BINBYTES
                    Push(Take(ReadByte()).ToArray());
                    break;
                case (byte)'B': // BINBYTES
                    Push(Take(ReadLength(4)).ToArray());
                    break;
                case 0x8e: // BINBYTES8
                case 0x96: // BYTEARRAY8
                    Push(Take(ReadLength(8)).ToArray());
                    break;

                case (byte)')': // EMPTY_TUPLE
                    Push(new PickleTuple([]));
                    break;
                case 0x85: // TUPLE1
                case 0x86: // TUPLE2
                case 0x87: // TUPLE3
                    int count = opcode - 0x84;
                    RequireStack(count, "TUPLE");
                    var items = _stack.GetRange(_stack.Count - count, count).ToArray();
                    _stack.RemoveRange(_stack.Count - count, count);
                    Push(new PickleTuple(items));
                    break;
                case (byte)'t': // TUPLE
                    Push(new PickleTuple([.. PopMark()]));
                    break;
                case (byte)']': // EMPTY_LIST
                    Push(new PickleList([]));
                    break;
                case (byte)'l': // LIST
                    Push(new PickleList(PopMark()));
                    break;
                case 0x8f: // EMPTY_SET
                    Push(new PickleList([]));
                    break;
                case 0x91: // FROZENSET
                    Push(new PickleList(PopMark()));
                    break;
                case (byte)'}': // EMPTY_DICT
                    Push(new PickleDict());
                    break;
                case (byte)'d': // DICT
                    var dict = new PickleDict();
                    AddItems(dict, PopMark());
                    Push(dict);
                    break;

                case (byte)'a': // APPEND
                    object? item = Pop();
                    Target<PickleList>("APPEND").Items.Add(item);
                    break;
                case (byte)'e': // APPENDS
                case 0x90: // ADDITEMS
                    List<object?> appended = PopMark();
                    Target<PickleList>(opcode == 0x90 ? "ADDITEMS" : "APPENDS").Items.AddRange(appended);
                    break;
                case (byte)'s': // SETITEM
                    object? value = Pop();
                    object? key = Pop();
                    Target<PickleDict>("SETITEM").Items.Add(new(key, value));
                    break;
                case (byte)'u': // SETITEMS
                    List<object?> pairs = PopMark();
                    AddItems(Target<PickleDict>("SETITEMS"), pairs);
                    break;

                case (byte)'q': // BINPUT
                    Memoize(ReadByte());
                    break;
                case (byte)'r': // LONG_BINPUT
                    Memoize(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)));
                    break;
                case 0x94: // MEMOIZE
                    Memoize(_memo.Count);
                    break;
                case (byte)'h': // BINGET
                    Recall(ReadByte());
                    break;
                case (byte)'j': // LONG_BINGET
                    Recall(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)));
                    break;

                case (byte)'c': // GLOBAL
                    string module = ReadLine();
                    string name = ReadLine();
                    Push(Resolve(module, name));
                    break;
                case 0x93: // STACK_GLOBAL
                    string stackName = GlobalPart(Pop(), "name");
                    string stackModule = GlobalPart(Pop(), "module");
                    Push(Resolve(stackModule, stackName));
                    break;
                case (byte)'R': // REDUCE
                    var arguments = Pop() as PickleTuple ?? throw Damaged("REDUCE's arguments are not a tuple");
                    object? function = Pop();
                    Push(Call(function as PickleGlobal ?? throw Damaged($"REDUCE calls a {Describe(function)}, not a global"), arguments));
                    break;
                case (byte)'b': // BUILD
                    object? state = Pop();
                    Build(Top("BUILD"), state);
                    break;
                case 0x81: // NEWOBJ
                case 0x92: // NEWOBJ_EX
                    if (opcode == 0x92)
                    {
                        Pop();
                    }

                    Pop();
                    throw Instantiates(Pop());
                case (byte)'o': // OBJ
                    List<object?> objectArguments = PopMark();
                    throw Instantiates(objectArguments.Count > 0 ? objectArguments[0] : null);
                case (byte)'i': // INST
                    string instanceModule = ReadLine();
                    string instanceName = ReadLine();
                    throw CheckpointErrors.UnsafeGlobal(_path, $"{instanceModule}.{instanceName}", "instantiates", _opcodeStart);
                case 0x82: // EXT1
                case 0x83: // EXT2
                case 0x84: // EXT4
                    throw CheckpointErrors.Unsupported(_path, $"its pickle names a global through Python's extension registry (opcode 0x{opcode:x2} at byte {_opcodeStart} of data.pkl), which torch.save never writes");

                case (byte)'Q': // BINPERSID
                    Push(LoadPersistent(Pop()));
                    break;

                default:
                    throw Damaged($"opcode 0x{opcode:x2}{Printable(opcode)} is unknown, or never written by torch.save");
            }
        }
    }

    private string GlobalPart(object? value, string what) => value is string { Length: <= CheckpointLimits.MaxGlobalNameBytes } text
        ? text
        : throw Damaged($"STACK_GLOBAL's {what} is a {Describe(value)} rather than a name of at most {CheckpointLimits.MaxGlobalNameBytes} characters");

    private PickleGlobal Resolve(string module, string name) =>
        PickleGlobals.Resolve(module, name) ?? throw CheckpointErrors.UnsafeGlobal(_path, $"{module}.{name}", "names", _opcodeStart);

    /// <summary>What calling an allowed global returns, worked out here; nothing is called.</summary>
    private object? Call(PickleGlobal function, PickleTuple arguments)
    {
        object?[] args = arguments.Items;
        switch (function.Kind)
        {
            case GlobalKind.OrderedDict when args.Length == 0:
                return new PickleDict();
            case GlobalKind.RebuildTensor:
                return RebuildTensor(args);
            case GlobalKind.RebuildParameter when args.Length == 3:
            case GlobalKind.RebuildParameterWithState when args.Length == 4:
                return args[0] as TensorRecord ?? throw Damaged($"{function.FullName} wraps a {Describe(args[0])}, not a tensor");
            case GlobalKind.TorchSize when args.Length == 1 && args[0] is PickleTuple sizes:
                return sizes;
            case GlobalKind.Set when args.Length == 0:
                return new PickleList([]);
            case GlobalKind.Set when args.Length == 1 && args[0] is PickleList list:
                return new PickleList([.. list.Items]);
            case GlobalKind.Set when args.Length == 1 && args[0] is PickleTuple tuple:
                return new PickleList([.. tuple.Items]);
            case GlobalKind.CodecsEncode when args.Length == 2 && args[0] is string text && args[1] is "latin1" or "latin-1":
                return EncodeLatin1(text);
            case GlobalKind.NumpyDtype when args.Length >= 1 && args[0] is string descriptor:
                return new NumpyDtype(descriptor);
            case GlobalKind.NumpyScalar when args.Length == 2 && args[0] is NumpyDtype dtype && args[1] is byte[] bytes:
                return NumpyScalar(dtype, bytes);
            case GlobalKind.Storage or GlobalKind.OpaqueClass:
                throw CheckpointErrors.UnsafeGlobal(_path, function.FullName, "calls", _opcodeStart);
            default:
                throw Damaged($"{function.FullName} is called with arguments torch.save never writes ({string.Join(", ", args.Select(Describe))})");
        }
    }

    /// <summary><c>_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])</c>.</summary>
    private TensorRecord RebuildTensor(object?[] args)
    {
        if (args.Length is not (6 or 7))
        {
            throw Damaged($"_rebuild_tensor_v2 takes 6 or 7 arguments, not {args.Length}");
        }

        var storage = args[0] as TorchStorage ?? throw Damaged($"a tensor's storage is a {Describe(args[0])}, not a storage record");
        long offset = args[1] as long? ?? throw Damaged($"a tensor's storage offset is a {Describe(args[1])}, not an integer");
        long[] shape = Dimensions(args[2], "size");
        long[] strides = Dimensions(args[3], "stride");
        if (strides.Length != shape.Length)
        {
            throw Damaged($"a tensor has {shape.Length} sizes but {strides.Length} strides");
        }

        if (args[4] is not bool || args[5] is not PickleDict || (args.Length == 7 && args[6] is not (null or PickleDict)))
        {
            throw Damaged("a tensor's requires_grad, backward hooks or metadata are not what torch.save writes");
        }

        if (offset < 0)
        {
            throw Damaged($"a tensor has the negative storage offset {offset}");
        }

        return new TensorRecord(storage, offset, shape, strides);
    }

    private long[] Dimensions(object? value, string what)
    {
        var tuple = value as PickleTuple ?? throw Damaged($"a tensor's {what} is a {Describe(value)}, not a tuple");
        if (tuple.Items.Length > CheckpointLimits.MaxTensorRank)
        {
            throw Damaged($"a tensor has {tuple.Items.Length} dimensions, more than {CheckpointLimits.MaxTensorRank}");
        }

        long[] dimensions = new long[tuple.Items.Length];
        for (int i = 0; i < dimensions.Length; i++)
        {
            dimensions[i] = tuple.Items[i] is long dimension && dimension >= 0
                ? dimension
                : throw Damaged($"a tensor's {what} holds {Describe(tuple.Items[i])}, not a non-negative integer");
        }

        return dimensions;
    }

    /// <summary>A storage record: <c>("storage", storage class, key, location, element count)</c>.</summary>
    private TorchStorage LoadPersistent(object? id)
    {
        if (id is not PickleTuple { Items: [var kind, var type, var key, var location, var count] }
            || kind is not ("storage" or byte[]) || (kind is byte[] bytes && !bytes.AsSpan().SequenceEqual("storage"u8)))
        {
            throw Damaged($"a persistent id is a {Describe(id)}, not torch's (\"storage\", type, key, location, size) record");
        }

        if (type is not PickleGlobal { Kind: GlobalKind.Storage } storageClass)
        {
            throw Damaged($"a storage record names a {Describe(type)} as its storage class");
        }

        if (key is not string storageKey || location is not string || count is not long elementCount || elementCount < 0)
        {
            throw Damaged("a storage record's key, location or size is not what torch.save writes");
        }

        if (storageKey.Length is 0 or > 256 || storageKey is "." or ".." || storageKey.AsSpan().IndexOfAny("/\\\0") >= 0)
        {
            throw Damaged($"the storage key '{storageKey.Replace("\0", "\\0", StringComparison.Ordinal)}' is not a plain name");
        }

        return _loadStorage(storageKey, storageClass, elementCount);
    }

    private void Build(object? target, object? state)
    {
        switch (target)
        {
            case PickleDict dict when state is PickleDict or null:
                dict.Attributes = state;
                break;
            case NumpyDtype dtype when state is PickleTuple { Items.Length: >= 2 } tuple:
                if (tuple.Items[1] is string { Length: 1 } order)
                {
                    dtype.ByteOrder = order[0];
                }

                break;
            case PickleGlobal global:
                throw CheckpointErrors.UnsafeGlobal(_path, global.FullName, "sets the state of", _opcodeStart);
            default:
                throw Damaged($"BUILD sets the state of a {Describe(target)}, which torch.save never does");
        }
    }

    private Exception Instantiates(object? type) => type is PickleGlobal global
        ? CheckpointErrors.UnsafeGlobal(_path, global.FullName, "instantiates", _opcodeStart)
        : Damaged($"an object is created from a {Describe(type)}, not a class");

    private static object? NumpyScalar(NumpyDtype dtype, byte[] bytes)
    {
        string descriptor = dtype.Descriptor;
        bool sized = descriptor.Length >= 2 && int.TryParse(descriptor.AsSpan(1), out int size) && size == bytes.Length;
        if (!sized || bytes.Length > 8)
        {
            return new OpaqueValue($"numpy {descriptor} scalar");
        }

        Span<byte> little = stackalloc byte[8];
        little.Clear();
        bytes.CopyTo(little);
        if (dtype.ByteOrder == '>')
        {
            little[..bytes.Length].Reverse();
        }

        ulong raw = BinaryPrimitives.ReadUInt64LittleEndian(little);
        int bits = bytes.Length * 8;
        return (descriptor[0], bytes.Length) switch
        {
            ('f', 2) => (double)BitConverter.UInt16BitsToHalf((ushort)raw),
            ('f', 4) => (double)BitConverter.UInt32BitsToSingle((uint)raw),
            ('f', 8) => BitConverter.UInt64BitsToDouble(raw),
            ('i', _) => (long)(raw << (64 - bits)) >> (64 - bits),
            ('u', 8) when raw > long.MaxValue => new BigInteger(raw),
            ('u', _) => (long)raw,
            ('b', 1) => raw != 0,
            _ => new OpaqueValue($"numpy {descriptor} scalar"),
        };
    }

    private byte[] EncodeLatin1(string text)
    {
        byte[] bytes = new byte[text.Length];
        for (int i = 0; i < text.Length; i++)
        {
            bytes[i] = text[i] <= 0xFF ? (byte)text[i] : throw Damaged("_codecs.encode is given text outside Latin-1");
        }

        return bytes;
    }

    private void AddItems(PickleDict dict, List<object?> items)
    {
        if (items.Count % 2 != 0)
        {
            throw Damaged($"a dict is given {items.Count} values, not key-value pairs");
        }

        for (int i = 0; i < items.Count; i += 2)
        {
            dict.Items.Add(new(items[i], items[i + 1]));
        }
    }

    private void Push(object? value)
    {
        if (_stack.Count >= CheckpointLimits.MaxStackDepth)
        {
            throw Damaged($"more than {CheckpointLimits.MaxStackDepth} values on the stack");
        }

        if (++_created > CheckpointLimits.MaxPickleObjects)
        {
            throw Damaged($"more than {CheckpointLimits.MaxPickleObjects} values");
        }

        _stack.Add(value);
    }

    private object? Pop()
    {
        RequireStack(1, "an opcode");
        object? value = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return value;
    }

    private object? Top(string opcode)
    {
        RequireStack(1, opcode);
        return _stack[^1];
    }

    private T Target<T>(string opcode)
        where T : class =>
        Top(opcode) as T ?? throw Damaged($"{opcode} applies to a {Describe(_stack[^1])}");

    /// <summary>Checks that <paramref name="count"/> values lie above the innermost MARK.</summary>
    private void RequireStack(int count, string opcode)
    {
        int floor = _marks.Count > 0 ? _marks.Peek() : 0;
        if (_stack.Count - floor < count)
        {
            throw Damaged($"{opcode} needs {count} value(s) but the stack has {_stack.Count - floor}");
        }
    }

    private List<object?> PopMark()
    {
        if (_marks.Count == 0)
        {
            throw Damaged("an opcode needs a MARK that was never set");
        }

        int start = _marks.Pop();
        List<object?> items = _stack.GetRange(start, _stack.Count - start);
        _stack.RemoveRange(start, _stack.Count - start);
        return items;
    }

    private void Memoize(long index)
    {
        if (_memo.Count >= CheckpointLimits.MaxMemoEntries && !_memo.ContainsKey(index))
        {
            throw Damaged($"more than {CheckpointLimits.MaxMemoEntries} memo entries");
        }

        _memo[index] = Top("a memo PUT");
    }

    private void Recall(long index) =>
        Push(_memo.TryGetValue(index, out object? value) ? value : throw Damaged($"memo slot {index} is read before it is written"));

    private byte ReadByte() => Take(1)[0];

    /// <summary>The next <paramref name="count"/> bytes, refused when the pickle has fewer left.</summary>
    private ReadOnlySpan<byte> Take(long count)
    {
        if (count > _data.Length - _position)
        {
            throw _position == _opcodeStart
                ? Damaged("it ends without a STOP opcode (truncated)")
                : Damaged($"the opcode needs {count} more bytes but only {_data.Length - _position} remain (truncated)");
        }

        var span = _data.AsSpan(_position, (int)count);
        _position += (int)count;
        return span;
    }

    /// <summary>A length of <paramref name="width"/> bytes, which must fit in what is left of the pickle.</summary>
    private int ReadLength(int width)
    {
        ReadOnlySpan<byte> bytes = Take(width);
        ulong length = width == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(bytes) : BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (length > (ulong)(_data.Length - _position))
        {
            throw Damaged($"it declares a length of {length} bytes but only {_data.Length - _position} remain (truncated, or a length that lies)");
        }

        return (int)length;
    }

    private object ReadInteger(int length)
    {
        if (length > CheckpointLimits.MaxIntegerBytes)
        {
            throw Damaged($"an integer of {length} bytes, more than {CheckpointLimits.MaxIntegerBytes}");
        }

        var value = new BigInteger(Take(length), isUnsigned: false, isBigEndian: false);
        return value >= long.MinValue && value <= long.MaxValue ? (object)(long)value : value;
    }

    private string ReadUtf8(int length)
    {
        if (length > CheckpointLimits.MaxStringBytes)
        {
            throw Damaged($"a string of {length} bytes, more than {CheckpointLimits.MaxStringBytes}");
        }

        try
        {
            return StrictUtf8.GetString(Take(length));
        }
        catch (DecoderFallbackException)
        {
            throw Damaged("a string is not valid UTF-8");
        }
    }

    /// <summary>A newline-terminated name of GLOBAL or INST.</summary>
    private string ReadLine()
    {
        int limit = Math.Min(_data.Length - _position, CheckpointLimits.MaxGlobalNameBytes + 1);
        int newline = _data.AsSpan(_position, limit).IndexOf((byte)'\n');
        if (newline < 0)
        {
            throw Damaged(limit > CheckpointLimits.MaxGlobalNameBytes
                ? $"a global's name is longer than {CheckpointLimits.MaxGlobalNameBytes} bytes"
                : "a global's name is cut off (truncated)");
        }

        string line = ReadUtf8(newline);
        _position++;
        return line;
    }

    private Models.ModelLoadException Damaged(string detail) =>
        CheckpointErrors.Damaged(_path, $"its pickle is invalid at byte {_opcodeStart} of data.pkl: {detail}");

    private static string Printable(byte opcode) => opcode is >= 0x20 and < 0x7f ? $" ('{(char)opcode}')" : "";

    /// <summary>The Python type of a pickled value, for messages.</summary>
    public static string Describe(object? value) => value switch
    {
        null => "None",
        bool => "bool",
        long or BigInteger => "int",
        double => "float",
        string => "str",
        byte[] => "bytes",
        PickleList => "list",
        PickleTuple => "tuple",
        PickleDict => "dict",
        PickleGlobal global => global.FullName,
        TorchStorage => "storage",
        TensorRecord => "tensor",
        NumpyDtype => "numpy.dtype",
        _ => value.GetType().Name,
    };
}
