using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace StableDiffusion;

/// <summary>Flat views of dense tensor spans, for the element-wise math done with <see cref="TensorPrimitives"/>.</summary>
/// <remarks>Linked into each package as an internal helper: the three packages share no internals.</remarks>
internal static class TensorSpanExtensions
{
    /// <summary>The elements of a dense tensor span as one contiguous span.</summary>
    /// <exception cref="ArgumentException">The tensor span is strided (not dense).</exception>
    public static Span<T> AsSpan<T>(this TensorSpan<T> tensor)
    {
        if (!tensor.IsDense)
        {
            throw new ArgumentException("The tensor must be dense (contiguous, row-major); call ToDenseTensor() first.", nameof(tensor));
        }

        return MemoryMarshal.CreateSpan(ref TensorMarshal.GetReference(tensor), checked((int)tensor.FlattenedLength));
    }

    /// <summary>The elements of a dense read-only tensor span as one contiguous span.</summary>
    /// <exception cref="ArgumentException">The tensor span is strided (not dense).</exception>
    public static ReadOnlySpan<T> AsSpan<T>(this ReadOnlyTensorSpan<T> tensor)
    {
        if (!tensor.IsDense)
        {
            throw new ArgumentException("The tensor must be dense (contiguous, row-major); call ToDenseTensor() first.", nameof(tensor));
        }

        return MemoryMarshal.CreateReadOnlySpan(in TensorMarshal.GetReference(tensor), checked((int)tensor.FlattenedLength));
    }

    /// <summary>The elements of a dense tensor as one contiguous span.</summary>
    public static Span<T> AsSpan<T>(this Tensor<T> tensor) => tensor.AsTensorSpan().AsSpan();
}
