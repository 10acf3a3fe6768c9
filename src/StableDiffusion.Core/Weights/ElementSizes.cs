namespace StableDiffusion.Weights;

/// <summary>Bytes per element of the element types weight files hold (torch storages, safetensors dtypes).</summary>
internal static class ElementSizes
{
    /// <summary>ONNX's FLOAT8E4M3FN, which ONNX Runtime's enum does not name (its values are ONNX's <c>TensorProto.DataType</c>).</summary>
    public const TensorElementType Float8E4M3 = (TensorElementType)17;

    /// <summary>ONNX's FLOAT8E5M2.</summary>
    public const TensorElementType Float8E5M2 = (TensorElementType)19;

    public static int Of(TensorElementType type) => type switch
    {
        TensorElementType.Double or TensorElementType.Int64 or TensorElementType.UInt64 => 8,
        TensorElementType.Float or TensorElementType.Int32 or TensorElementType.UInt32 => 4,
        TensorElementType.Float16 or TensorElementType.BFloat16 or TensorElementType.Int16 or TensorElementType.UInt16 => 2,
        TensorElementType.Int8 or TensorElementType.UInt8 or TensorElementType.Bool or Float8E4M3 or Float8E5M2 => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Not an element type of a weights file."),
    };
}
