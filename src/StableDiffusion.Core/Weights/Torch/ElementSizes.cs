namespace StableDiffusion.Weights.Torch;

/// <summary>Bytes per element of the element types a torch storage can hold.</summary>
internal static class ElementSizes
{
    public static int Of(TensorElementType type) => type switch
    {
        TensorElementType.Double or TensorElementType.Int64 => 8,
        TensorElementType.Float or TensorElementType.Int32 => 4,
        TensorElementType.Float16 or TensorElementType.BFloat16 or TensorElementType.Int16 => 2,
        TensorElementType.Int8 or TensorElementType.UInt8 or TensorElementType.Bool => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Not an element type of a torch storage."),
    };
}
