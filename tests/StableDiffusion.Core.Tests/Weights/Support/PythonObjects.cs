using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace StableDiffusion.Core.Tests.Weights.Support;

// Python values as torch.save meets them, for TorchPickleWriter. Object identity matters as it does in Python: the same
// C# object saved twice is written once and then fetched from the memo, so tests can share storages and strings exactly
// as PyTorch does (C# string literals are interned, as Python's are).

/// <summary>A Python <c>dict</c>.</summary>
internal sealed class PyDict(params (object? Key, object? Value)[] items)
{
    public (object? Key, object? Value)[] Items { get; } = items;
}

/// <summary>A <c>collections.OrderedDict</c> (what <c>state_dict()</c> returns), with its instance attributes (<c>_metadata</c>).</summary>
internal sealed class PyOrderedDict((object? Key, object? Value)[] items, PyDict? attributes = null)
{
    public PyOrderedDict(params (object? Key, object? Value)[] items)
        : this(items, null)
    {
    }

    public (object? Key, object? Value)[] Items { get; } = items;

    public PyDict? Attributes { get; } = attributes;
}

/// <summary>A Python <c>list</c>.</summary>
internal sealed class PyList(params object?[] items)
{
    public object?[] Items { get; } = items;
}

/// <summary>A Python <c>tuple</c>.</summary>
internal sealed class PyTuple(params object?[] items)
{
    public object?[] Items { get; } = items;
}

/// <summary>A Python <c>set</c>.</summary>
internal sealed class PySet(params object?[] items)
{
    public object?[] Items { get; } = items;
}

/// <summary>A <c>torch.Size</c>.</summary>
internal sealed class TorchSize(params long[] sizes)
{
    public long[] Sizes { get; } = sizes;
}

/// <summary>A module-level name (a class or function), pickled by reference.</summary>
internal sealed record PyGlobal(string Module, string Name);

/// <summary>A numpy scalar such as <c>numpy.float64(0.25)</c>.</summary>
internal sealed class NumpyFloat64(double value)
{
    public double Value { get; } = value;
}

/// <summary>A tensor storage: its element type and bytes. Its key is assigned when first saved, as torch.save does.</summary>
internal sealed class SavedStorage(TensorElementType type, byte[] bytes)
{
    public TensorElementType Type { get; } = type;

    public byte[] Bytes { get; } = bytes;

    public long ElementCount => Bytes.Length / ElementSize(Type);

    public static SavedStorage Of(params float[] values) => new(TensorElementType.Float, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    public static SavedStorage Of(params Half[] values) => new(TensorElementType.Float16, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    public static SavedStorage Of(params double[] values) => new(TensorElementType.Double, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    public static SavedStorage Of(params long[] values) => new(TensorElementType.Int64, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    /// <summary>bfloat16 storage from raw bit patterns (the upper halves of float32 values).</summary>
    public static SavedStorage BFloat16(params ushort[] bits) => new(TensorElementType.BFloat16, MemoryMarshal.AsBytes(bits.AsSpan()).ToArray());

    public static int ElementSize(TensorElementType type) => type switch
    {
        TensorElementType.Double or TensorElementType.Int64 => 8,
        TensorElementType.Float or TensorElementType.Int32 => 4,
        TensorElementType.Float16 or TensorElementType.BFloat16 or TensorElementType.Int16 => 2,
        _ => 1,
    };

    /// <summary>torch's legacy storage class name for the element type (what the storage record names).</summary>
    public static string ClassName(TensorElementType type) => type switch
    {
        TensorElementType.Float => "FloatStorage",
        TensorElementType.Double => "DoubleStorage",
        TensorElementType.Float16 => "HalfStorage",
        TensorElementType.BFloat16 => "BFloat16Storage",
        TensorElementType.Int64 => "LongStorage",
        TensorElementType.Int32 => "IntStorage",
        TensorElementType.Int16 => "ShortStorage",
        TensorElementType.Int8 => "CharStorage",
        TensorElementType.UInt8 => "ByteStorage",
        TensorElementType.Bool => "BoolStorage",
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };
}

/// <summary>A tensor: a strided view of a storage.</summary>
internal sealed class SavedTensor(SavedStorage storage, long[] shape, long[] strides, long offset = 0, bool requiresGrad = false)
{
    public SavedStorage Storage { get; } = storage;

    public long[] Shape { get; } = shape;

    public long[] Strides { get; } = strides;

    public long Offset { get; } = offset;

    public bool RequiresGrad { get; } = requiresGrad;

    /// <summary>A row-major view of <paramref name="storage"/> from <paramref name="offset"/>.</summary>
    public static SavedTensor Contiguous(SavedStorage storage, long[] shape, long offset = 0)
    {
        long[] strides = new long[shape.Length];
        long step = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            strides[i] = step;
            step *= shape[i];
        }

        return new SavedTensor(storage, shape, strides, offset);
    }

    /// <summary>A row-major tensor over its own storage holding <paramref name="values"/>.</summary>
    public static SavedTensor Of(long[] shape, params float[] values) => Contiguous(SavedStorage.Of(values), shape);
}

/// <summary>An <c>nn.Parameter</c> around a tensor, with Python attributes when <paramref name="state"/> is given.</summary>
internal sealed class SavedParameter(SavedTensor data, bool requiresGrad = true, PyDict? state = null)
{
    public SavedTensor Data { get; } = data;

    public bool RequiresGrad { get; } = requiresGrad;

    public PyDict? State { get; } = state;
}
