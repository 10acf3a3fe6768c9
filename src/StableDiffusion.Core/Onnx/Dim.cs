namespace StableDiffusion.Onnx;

/// <summary>
/// One dimension of a graph input or output: a fixed size, or a named dynamic dimension (<c>"batch"</c>). Numbers and
/// strings convert implicitly, so shapes read as <c>("batch", 4, "height", "width")</c>.
/// </summary>
internal readonly record struct Dim
{
    private Dim(long? size, string? name) => (Size, Name) = (size, name);

    /// <summary>The fixed size, or null for a named dimension.</summary>
    public long? Size { get; }

    /// <summary>The name of a dynamic dimension, or null for a fixed one.</summary>
    public string? Name { get; }

    /// <summary>A fixed dimension.</summary>
    public static implicit operator Dim(long size) => new(size, null);

    /// <summary>A fixed dimension.</summary>
    public static implicit operator Dim(int size) => new(size, null);

    /// <summary>A named dynamic dimension.</summary>
    public static implicit operator Dim(string name) => new(null, name);

    /// <summary>A fixed dimension.</summary>
    public static Dim Fixed(long size) => size;

    /// <summary>A named dynamic dimension.</summary>
    public static Dim Named(string name) => name;

    /// <summary>The dimension as ONNX writes it.</summary>
    public TensorShapeProto.Types.Dimension ToProto() =>
        Name is not null ? new() { DimParam = Name } : new() { DimValue = Size ?? 0 };

    /// <inheritdoc/>
    public override string ToString() => Name ?? Size?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "?";
}
