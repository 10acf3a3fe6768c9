namespace StableDiffusion.Weights;

/// <summary>One tensor of a <see cref="SafetensorsFile"/>: its header entry, with the byte range made absolute.</summary>
/// <param name="Name">The tensor's name, such as <c>decoder.conv_in.weight</c>.</param>
/// <param name="DType">Its element type as the header names it (<c>F32</c>, <c>F16</c>, <c>BF16</c>, ...).</param>
/// <param name="ElementType">Its element type.</param>
/// <param name="Shape">Its dimensions (empty for a scalar).</param>
/// <param name="Offset">Where its bytes start, from the start of the file.</param>
/// <param name="Length">How many bytes it has (the product of <paramref name="Shape"/> times the element size).</param>
internal sealed record SafetensorsTensor(string Name, string DType, TensorElementType ElementType, long[] Shape, long Offset, long Length)
{
    /// <summary>The number of elements.</summary>
    public long ElementCount => Shape.Aggregate(1L, (count, dimension) => count * dimension);

    /// <summary>The dtype and shape as a header would show them (<c>F32[320, 4, 3, 3]</c>), for messages.</summary>
    public string Description => $"{DType}[{string.Join(", ", Shape)}]";
}
