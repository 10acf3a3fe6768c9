using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using StableDiffusion.Weights.Torch;

namespace StableDiffusion.Weights;

/// <summary>
/// One tensor of a <see cref="TorchCheckpoint"/>: its element type, shape and memory layout, and its data, read from the
/// file only when asked for (in place: torch.save stores tensors uncompressed, and the file is memory-mapped).
/// </summary>
/// <remarks>
/// A tensor is a strided view of a storage it may share with others (tied weights, slices). Views that are not row-major
/// (<see cref="IsContiguous"/> false: a transposed weight saved without <c>.contiguous()</c>) are read correctly, element by
/// element in row-major order, by the <c>CopyTo</c> methods. The data stays readable until the checkpoint is disposed.
/// </remarks>
public sealed class TorchCheckpointTensor
{
    private readonly TorchStorage _storage;
    private readonly long[] _shape;
    private readonly long[] _strides;
    private readonly int _elementSize;

    /// <summary>The dimensions, counted from the innermost, that form one row-major block; all of them when contiguous.</summary>
    private readonly int _contiguousFrom;

    private TorchCheckpointTensor(string name, TensorRecord record, long elementCount)
    {
        Name = name;
        _storage = record.Storage;
        _shape = record.Shape;
        _strides = record.Strides;
        _elementSize = ElementSizes.Of(record.Storage.ElementType);
        StorageOffset = record.StorageOffset;
        ElementCount = elementCount;
        Shape = Array.AsReadOnly(_shape);
        Strides = Array.AsReadOnly(_strides);

        long block = 1;
        _contiguousFrom = _shape.Length;
        while (_contiguousFrom > 0 && (_shape[_contiguousFrom - 1] == 1 || _strides[_contiguousFrom - 1] == block))
        {
            block *= _shape[_contiguousFrom - 1];
            _contiguousFrom--;
        }
    }

    /// <summary>The tensor's name: its path in the pickled object, keys joined with dots (<c>state_dict.model.diffusion_model.out.2.bias</c>).</summary>
    public string Name { get; }

    /// <summary>The element type (<see cref="TensorElementType.Float"/>, <see cref="TensorElementType.Float16"/>, <see cref="TensorElementType.BFloat16"/>, <see cref="TensorElementType.Int64"/>, ...).</summary>
    public TensorElementType ElementType => _storage.ElementType;

    /// <summary>The size of each dimension; empty for a scalar.</summary>
    public IReadOnlyList<long> Shape { get; }

    /// <summary>The step, in elements, between neighbours along each dimension (row-major: the product of the later sizes).</summary>
    public IReadOnlyList<long> Strides { get; }

    /// <summary>Where the tensor starts in its storage, in elements.</summary>
    public long StorageOffset { get; }

    /// <summary>The number of elements (the product of <see cref="Shape"/>).</summary>
    public long ElementCount { get; }

    /// <summary>The number of bytes the elements take in row-major order.</summary>
    public long ByteCount => ElementCount * _elementSize;

    /// <summary>Whether the elements lie in row-major order with no gaps, so <see cref="TryGetBytes"/> can return them in place.</summary>
    public bool IsContiguous => ElementCount == 0 || _contiguousFrom == 0;

    /// <summary>The tensor's bytes (little-endian, row-major) straight from the checkpoint, without a copy.</summary>
    /// <param name="bytes">The bytes, valid until the checkpoint is disposed.</param>
    /// <returns>False for a tensor that is not <see cref="IsContiguous"/> or holds 2 GiB or more: use a <c>CopyTo</c> method.</returns>
    /// <exception cref="ObjectDisposedException">The checkpoint was disposed.</exception>
    public bool TryGetBytes(out ReadOnlySpan<byte> bytes)
    {
        if (!IsContiguous || ByteCount > int.MaxValue)
        {
            bytes = default;
            return false;
        }

        bytes = _storage.Read(StorageOffset * _elementSize, (int)ByteCount);
        return true;
    }

    /// <summary>Copies the elements, as they are stored (little-endian), in row-major order.</summary>
    /// <param name="destination">Exactly <see cref="ByteCount"/> bytes.</param>
    /// <exception cref="ArgumentException"><paramref name="destination"/> has another length.</exception>
    /// <exception cref="ObjectDisposedException">The checkpoint was disposed.</exception>
    public void CopyTo(Span<byte> destination)
    {
        RequireLength(destination.Length, ByteCount, "bytes", nameof(destination));
        int written = 0;
        foreach ((long start, int count) in Runs())
        {
            ReadOnlySpan<byte> run = Read(start, count);
            run.CopyTo(destination[written..]);
            written += run.Length;
        }
    }

    /// <summary>Copies the elements in row-major order, converted to float32 from float32, float16, bfloat16 or float64.</summary>
    /// <param name="destination">Exactly <see cref="ElementCount"/> elements.</param>
    /// <exception cref="InvalidOperationException">The tensor holds integers or booleans: read them with <see cref="CopyTo(Span{byte})"/>.</exception>
    /// <exception cref="ArgumentException"><paramref name="destination"/> has another length.</exception>
    /// <exception cref="ObjectDisposedException">The checkpoint was disposed.</exception>
    public void CopyTo(Span<float> destination) => CopyConverted(destination, ToSingle);

    /// <summary>Copies the elements in row-major order, converted to float16 (round to nearest even) from float32, float16, bfloat16 or float64.</summary>
    /// <param name="destination">Exactly <see cref="ElementCount"/> elements.</param>
    /// <exception cref="InvalidOperationException">The tensor holds integers or booleans: read them with <see cref="CopyTo(Span{byte})"/>.</exception>
    /// <exception cref="ArgumentException"><paramref name="destination"/> has another length.</exception>
    /// <exception cref="ObjectDisposedException">The checkpoint was disposed.</exception>
    public void CopyTo(Span<Half> destination) => CopyConverted(destination, ToHalf);

    /// <inheritdoc/>
    public override string ToString() => $"{Name}: {ElementType} [{string.Join(", ", _shape)}]";

    /// <summary>Names <paramref name="record"/>, checking that its view lies inside its storage.</summary>
    internal static TorchCheckpointTensor Create(string name, TensorRecord record, string path)
    {
        TorchStorage storage = record.Storage;
        string layout = $"'{name}' (shape [{string.Join(", ", record.Shape)}], strides [{string.Join(", ", record.Strides)}], offset {record.StorageOffset})";
        long count = 1;
        long last = record.StorageOffset;
        try
        {
            for (int i = 0; i < record.Shape.Length; i++)
            {
                count = checked(count * record.Shape[i]);
                if (record.Shape[i] > 0)
                {
                    last = checked(last + ((record.Shape[i] - 1) * record.Strides[i]));
                }
            }

            _ = checked(count * ElementSizes.Of(storage.ElementType));
        }
        catch (OverflowException)
        {
            throw CheckpointErrors.Damaged(path, $"the tensor {layout} has more elements than can exist");
        }

        if (count > 0 && last >= storage.ElementCount)
        {
            throw CheckpointErrors.Damaged(path, $"the tensor {layout} reaches element {last} of storage '{storage.Key}', which holds only {storage.ElementCount} elements");
        }

        return new TorchCheckpointTensor(name, record, count);
    }

    private static float BFloat16ToSingle(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    /// <summary>Converts little-endian float32, float16, bfloat16 or float64 bytes to float32.</summary>
    internal static void ToSingle(TensorElementType type, ReadOnlySpan<byte> source, Span<float> target)
    {
        switch (type)
        {
            case TensorElementType.Float:
                MemoryMarshal.Cast<byte, float>(source).CopyTo(target);
                break;
            case TensorElementType.Float16:
                TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(source), target);
                break;
            case TensorElementType.BFloat16:
                ReadOnlySpan<ushort> bfloat = MemoryMarshal.Cast<byte, ushort>(source);
                for (int i = 0; i < target.Length; i++)
                {
                    target[i] = BFloat16ToSingle(bfloat[i]);
                }

                break;
            default:
                TensorPrimitives.ConvertTruncating(MemoryMarshal.Cast<byte, double>(source), target);
                break;
        }
    }

    private static void ToHalf(TensorElementType type, ReadOnlySpan<byte> source, Span<Half> target)
    {
        switch (type)
        {
            case TensorElementType.Float16:
                MemoryMarshal.Cast<byte, Half>(source).CopyTo(target);
                break;
            case TensorElementType.Float:
                TensorPrimitives.ConvertToHalf(MemoryMarshal.Cast<byte, float>(source), target);
                break;
            case TensorElementType.BFloat16:
                ReadOnlySpan<ushort> bfloat = MemoryMarshal.Cast<byte, ushort>(source);
                for (int i = 0; i < target.Length; i++)
                {
                    target[i] = (Half)BFloat16ToSingle(bfloat[i]);
                }

                break;
            default:
                // Straight from float64, so the value is rounded once.
                TensorPrimitives.ConvertTruncating(MemoryMarshal.Cast<byte, double>(source), target);
                break;
        }
    }

    /// <summary>Copies every run of elements into <paramref name="destination"/> through <paramref name="convert"/>.</summary>
    private void CopyConverted<T>(Span<T> destination, RunConverter<T> convert)
    {
        if (ElementType is not (TensorElementType.Float or TensorElementType.Float16 or TensorElementType.BFloat16 or TensorElementType.Double))
        {
            throw new InvalidOperationException($"'{Name}' holds {ElementType} values, which are not floating point: read them with CopyTo(Span<byte>).");
        }

        RequireLength(destination.Length, ElementCount, "elements", nameof(destination));
        foreach ((long start, int count) in Runs())
        {
            convert(ElementType, Read(start, count), destination[..count]);
            destination = destination[count..];
        }
    }

    private ReadOnlySpan<byte> Read(long start, int count) => _storage.Read(start * _elementSize, count * _elementSize);

    /// <summary>
    /// The tensor's elements in row-major order as runs of consecutive storage elements, each under 2 GiB: one run (or a
    /// few) for a contiguous tensor; for a strided view, one per position of the dimensions outside its innermost
    /// row-major block.
    /// </summary>
    private IEnumerable<(long Start, int Count)> Runs()
    {
        if (ElementCount == 0)
        {
            yield break;
        }

        long block = 1;
        for (int d = _contiguousFrom; d < _shape.Length; d++)
        {
            block *= _shape[d];
        }

        int longestRun = int.MaxValue / _elementSize;
        long[] index = new long[_contiguousFrom];
        long start = StorageOffset;
        while (true)
        {
            for (long done = 0; done < block; done += longestRun)
            {
                yield return (start + done, (int)Math.Min(longestRun, block - done));
            }

            int dimension = _contiguousFrom - 1;
            for (; dimension >= 0; dimension--)
            {
                start += _strides[dimension];
                if (++index[dimension] < _shape[dimension])
                {
                    break;
                }

                start -= _strides[dimension] * _shape[dimension];
                index[dimension] = 0;
            }

            if (dimension < 0)
            {
                yield break;
            }
        }
    }

    private void RequireLength(int length, long expected, string unit, string parameter)
    {
        if (length != expected)
        {
            throw new ArgumentException($"The destination holds {length} {unit}, but '{Name}' has {expected}.", parameter);
        }
    }

    /// <summary>Converts one run of stored elements of <paramref name="type"/> into <paramref name="target"/>.</summary>
    private delegate void RunConverter<T>(TensorElementType type, ReadOnlySpan<byte> source, Span<T> target);
}
