namespace StableDiffusion.Weights.Torch;

// The values the pickle machine builds. Python's None, bool, int, float, str and bytes are null, bool, long (or
// BigInteger past 64 bits), double, string and byte[]; containers and torch records are the types below. None of them
// holds or calls anything a file names.

/// <summary>A Python list, or a set (pickled as a list of its items).</summary>
internal sealed class PickleList(List<object?> items)
{
    public List<object?> Items { get; } = items;
}

/// <summary>A Python tuple.</summary>
internal sealed class PickleTuple(object?[] items)
{
    public object?[] Items { get; } = items;
}

/// <summary>A Python dict or <c>collections.OrderedDict</c>: its items in insertion order.</summary>
internal sealed class PickleDict
{
    public List<KeyValuePair<object?, object?>> Items { get; } = [];

    /// <summary>Instance attributes set by BUILD (a state dict's <c>_metadata</c>): not items, so never flattened.</summary>
    public object? Attributes { get; set; }
}

/// <summary>What an allowed global stands for; the machine interprets each kind itself and calls nothing.</summary>
internal enum GlobalKind
{
    /// <summary><c>collections.OrderedDict</c>: called with no arguments, it makes an empty dict.</summary>
    OrderedDict,

    /// <summary><c>torch._utils._rebuild_tensor_v2</c>: a tensor view of a storage.</summary>
    RebuildTensor,

    /// <summary><c>torch._utils._rebuild_parameter</c>: an <c>nn.Parameter</c> around a tensor.</summary>
    RebuildParameter,

    /// <summary><c>torch._utils._rebuild_parameter_with_state</c>: the same, with Python attributes, which are dropped.</summary>
    RebuildParameterWithState,

    /// <summary>A torch storage class such as <c>torch.FloatStorage</c>: named in a storage record, never called.</summary>
    Storage,

    /// <summary><c>torch.Size</c>: a tuple of sizes.</summary>
    TorchSize,

    /// <summary><c>builtins.set</c>: kept as a list of its items.</summary>
    Set,

    /// <summary><c>_codecs.encode(text, "latin1")</c>: how protocol 2 pickles Python 3 bytes.</summary>
    CodecsEncode,

    /// <summary><c>numpy.dtype</c>: a numpy element type, for numpy scalars.</summary>
    NumpyDtype,

    /// <summary><c>numpy.core.multiarray.scalar</c>: a numpy number, decoded from its bytes.</summary>
    NumpyScalar,

    /// <summary>A class that some checkpoints use only as a dictionary key (Lightning's <c>ModelCheckpoint</c>): an opaque name.</summary>
    OpaqueClass,
}

/// <summary>An allowed global, as the name the file used and what it stands for.</summary>
internal sealed record PickleGlobal(string Module, string Name, GlobalKind Kind, TensorElementType? StorageType = null)
{
    public string FullName => $"{Module}.{Name}";
}

/// <summary>A numpy element type: its descriptor (<c>f8</c>, <c>i4</c>, ...) and byte order (<c>&lt;</c>, <c>&gt;</c>, <c>|</c>).</summary>
internal sealed class NumpyDtype(string descriptor)
{
    public string Descriptor { get; } = descriptor;

    public char ByteOrder { get; set; } = '<';
}

/// <summary>A value the reader keeps only as a description (a numpy scalar of an unusual type): never flattened.</summary>
internal sealed record OpaqueValue(string Description);

/// <summary>A storage record: the zip entry holding <see cref="ElementCount"/> elements of <see cref="ElementType"/>.</summary>
internal sealed class TorchStorage(CheckpointArchive archive, ZipEntry entry, string key, TensorElementType elementType, long elementCount)
{
    public string Key { get; } = key;

    public ZipEntry Entry { get; } = entry;

    public TensorElementType ElementType { get; } = elementType;

    public long ElementCount { get; } = elementCount;

    /// <summary>Bytes of the storage, in place where the entry is stored uncompressed.</summary>
    public ReadOnlySpan<byte> Read(long byteOffset, int length) => archive.Read(Entry, byteOffset, length);
}

/// <summary>A tensor as <c>_rebuild_tensor_v2</c> describes it: a strided view of a storage, checked when it is named.</summary>
internal sealed class TensorRecord(TorchStorage storage, long storageOffset, long[] shape, long[] strides)
{
    public TorchStorage Storage { get; } = storage;

    public long StorageOffset { get; } = storageOffset;

    public long[] Shape { get; } = shape;

    public long[] Strides { get; } = strides;
}
