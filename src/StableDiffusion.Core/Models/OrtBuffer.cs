using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;

namespace StableDiffusion.Models;

/// <summary>
/// A graph input or output of fixed shape whose memory stays pinned for its lifetime, so the same <see cref="OrtValue"/>
/// serves every denoising step without allocating. Float, Float16, Int32 and Int64 graphs all read and write through a
/// single-precision (or integer) view; the conversion to the graph's element type happens at the boundary.
/// </summary>
internal sealed class OrtBuffer : IDisposable
{
    private readonly float[]? _single;
    private readonly Float16[]? _half;
    private readonly long[]? _int64;
    private readonly int[]? _int32;

    public OrtBuffer(TensorElementType type, long[] shape)
    {
        Type = type;
        Shape = shape;
        Length = checked((int)shape.Aggregate(1L, (a, b) => a * b));
        switch (type)
        {
            case TensorElementType.Float:
                _single = GC.AllocateArray<float>(Length, pinned: true);
                Value = Create(_single);
                break;
            case TensorElementType.Float16:
                _single = new float[Length];
                _half = GC.AllocateArray<Float16>(Length, pinned: true);
                Value = Create(_half);
                break;
            case TensorElementType.Int64:
                _int64 = GC.AllocateArray<long>(Length, pinned: true);
                Value = Create(_int64);
                break;
            case TensorElementType.Int32:
                _int32 = GC.AllocateArray<int>(Length, pinned: true);
                Value = Create(_int32);
                break;
            default:
                throw new NotSupportedException($"Element type {type} is not used by Stable Diffusion graphs.");
        }
    }

    public TensorElementType Type { get; }

    public long[] Shape { get; }

    public int Length { get; }

    public OrtValue Value { get; }

    /// <summary>The single-precision view of a Float or Float16 buffer.</summary>
    public Span<float> Single => _single ?? throw new InvalidOperationException($"A {Type} buffer has no single-precision view.");

    /// <summary>Writes single-precision values, converting to the graph's type (Int64 truncates toward zero, as numpy's cast does).</summary>
    public void Write(ReadOnlySpan<float> values)
    {
        switch (Type)
        {
            case TensorElementType.Float:
                values.CopyTo(_single);
                break;
            case TensorElementType.Float16:
                values.CopyTo(_single);
                TensorPrimitives.ConvertToHalf(values, MemoryMarshal.Cast<Float16, Half>(_half.AsSpan()));
                break;
            case TensorElementType.Int64:
                for (int i = 0; i < values.Length; i++)
                {
                    _int64![i] = (long)values[i];
                }

                break;
            case TensorElementType.Int32:
                for (int i = 0; i < values.Length; i++)
                {
                    _int32![i] = (int)values[i];
                }

                break;
            default:
                throw new InvalidOperationException($"Cannot write numbers to a {Type} buffer.");
        }
    }

    /// <summary>Writes integer values (token ids) to an Int32 or Int64 buffer.</summary>
    public void Write(ReadOnlySpan<int> values)
    {
        switch (Type)
        {
            case TensorElementType.Int32:
                values.CopyTo(_int32);
                break;
            case TensorElementType.Int64:
                for (int i = 0; i < values.Length; i++)
                {
                    _int64![i] = values[i];
                }

                break;
            default:
                throw new InvalidOperationException($"Cannot write integers to a {Type} buffer.");
        }
    }

    /// <summary>Makes a Float16 buffer's single-precision view current after the graph wrote it (a no-op for Float).</summary>
    public void Refresh()
    {
        if (_half is not null)
        {
            TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<Float16, Half>(_half.AsSpan()), _single);
        }
    }

    /// <summary>After writing <see cref="Single"/> directly, makes the graph-typed memory current (a no-op for Float).</summary>
    public void Commit()
    {
        if (_half is not null)
        {
            TensorPrimitives.ConvertToHalf(_single, MemoryMarshal.Cast<Float16, Half>(_half.AsSpan()));
        }
    }

    /// <summary>The size of the graph-typed memory in bytes.</summary>
    public long ByteLength => (long)Length * Type switch
    {
        TensorElementType.Float16 => 2,
        TensorElementType.Int64 => 8,
        _ => 4, // Float or Int32: the constructor takes no other type.
    };

    /// <summary>The address of the graph-typed memory (pinned for the buffer's lifetime), for device copies.</summary>
    public unsafe nint NativeData => (nint)(Type switch
    {
        TensorElementType.Float => Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_single!)),
        TensorElementType.Float16 => Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_half!)),
        TensorElementType.Int64 => Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_int64!)),
        _ => Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_int32!)), // Int32: the constructor takes no other type.
    });

    public void Dispose() => Value.Dispose();

    private OrtValue Create<T>(T[] data) where T : unmanaged => OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, data.AsMemory(), Shape);
}
