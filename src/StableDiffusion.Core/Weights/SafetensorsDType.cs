namespace StableDiffusion.Weights;

/// <summary>The element type of a tensor in a safetensors file (its header's <c>dtype</c>).</summary>
public enum SafetensorsDType
{
    /// <summary><c>BOOL</c>: one byte per element.</summary>
    Bool,

    /// <summary><c>U8</c>.</summary>
    UInt8,

    /// <summary><c>I8</c>.</summary>
    Int8,

    /// <summary><c>F8_E4M3</c>: 8-bit float, 4 exponent bits (no infinities).</summary>
    Float8E4M3,

    /// <summary><c>F8_E5M2</c>: 8-bit float, 5 exponent bits.</summary>
    Float8E5M2,

    /// <summary><c>I16</c>.</summary>
    Int16,

    /// <summary><c>U16</c>.</summary>
    UInt16,

    /// <summary><c>F16</c>: IEEE half precision.</summary>
    Float16,

    /// <summary><c>BF16</c>: bfloat16.</summary>
    BFloat16,

    /// <summary><c>I32</c>.</summary>
    Int32,

    /// <summary><c>U32</c>.</summary>
    UInt32,

    /// <summary><c>F32</c>.</summary>
    Float32,

    /// <summary><c>F64</c>.</summary>
    Float64,

    /// <summary><c>I64</c>.</summary>
    Int64,

    /// <summary><c>U64</c>.</summary>
    UInt64,
}

/// <summary>What the SDK needs to know about each <see cref="SafetensorsDType"/>.</summary>
internal static class SafetensorsDTypes
{
    private static readonly Dictionary<string, SafetensorsDType> ByName = new(StringComparer.Ordinal)
    {
        ["BOOL"] = SafetensorsDType.Bool,
        ["U8"] = SafetensorsDType.UInt8,
        ["I8"] = SafetensorsDType.Int8,
        ["F8_E4M3"] = SafetensorsDType.Float8E4M3,
        ["F8_E5M2"] = SafetensorsDType.Float8E5M2,
        ["I16"] = SafetensorsDType.Int16,
        ["U16"] = SafetensorsDType.UInt16,
        ["F16"] = SafetensorsDType.Float16,
        ["BF16"] = SafetensorsDType.BFloat16,
        ["I32"] = SafetensorsDType.Int32,
        ["U32"] = SafetensorsDType.UInt32,
        ["F32"] = SafetensorsDType.Float32,
        ["F64"] = SafetensorsDType.Float64,
        ["I64"] = SafetensorsDType.Int64,
        ["U64"] = SafetensorsDType.UInt64,
    };

    /// <summary>The names the format defines that this reader knows, for messages.</summary>
    public static string KnownNames => string.Join(", ", ByName.Keys);

    public static bool TryParse(string name, out SafetensorsDType dtype) => ByName.TryGetValue(name, out dtype);

    /// <summary>Bytes per element.</summary>
    public static int Size(this SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.Bool or SafetensorsDType.UInt8 or SafetensorsDType.Int8 or SafetensorsDType.Float8E4M3 or SafetensorsDType.Float8E5M2 => 1,
        SafetensorsDType.Int16 or SafetensorsDType.UInt16 or SafetensorsDType.Float16 or SafetensorsDType.BFloat16 => 2,
        SafetensorsDType.Int32 or SafetensorsDType.UInt32 or SafetensorsDType.Float32 => 4,
        SafetensorsDType.Float64 or SafetensorsDType.Int64 or SafetensorsDType.UInt64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };

    /// <summary>The ONNX element type (the values of <c>TensorProto.DataType</c>, which ONNX Runtime's enum shares).</summary>
    public static TensorElementType ToElementType(this SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.Bool => TensorElementType.Bool,
        SafetensorsDType.UInt8 => TensorElementType.UInt8,
        SafetensorsDType.Int8 => TensorElementType.Int8,
        SafetensorsDType.Float8E4M3 => (TensorElementType)17, // FLOAT8E4M3FN, which ONNX Runtime's enum does not name
        SafetensorsDType.Float8E5M2 => (TensorElementType)19, // FLOAT8E5M2
        SafetensorsDType.Int16 => TensorElementType.Int16,
        SafetensorsDType.UInt16 => TensorElementType.UInt16,
        SafetensorsDType.Float16 => TensorElementType.Float16,
        SafetensorsDType.BFloat16 => TensorElementType.BFloat16,
        SafetensorsDType.Int32 => TensorElementType.Int32,
        SafetensorsDType.UInt32 => TensorElementType.UInt32,
        SafetensorsDType.Float32 => TensorElementType.Float,
        SafetensorsDType.Float64 => TensorElementType.Double,
        SafetensorsDType.Int64 => TensorElementType.Int64,
        SafetensorsDType.UInt64 => TensorElementType.UInt64,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };
}
