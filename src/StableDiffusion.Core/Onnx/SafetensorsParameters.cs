using StableDiffusion.Models;
using StableDiffusion.Weights;

namespace StableDiffusion.Onnx;

/// <summary>
/// Weights from safetensors files, referenced by the graph as ONNX external data: each initializer names the file,
/// the tensor's offset and its length, so the weights are never copied to disk, and ONNX Runtime reads them straight from
/// the file when the session is created (with <see cref="Folder"/> as
/// <c>session.model_external_initializers_file_folder_path</c>).
/// </summary>
/// <remarks>
/// <para>A weight stored in another floating-point type than <see cref="ComputeType"/> is converted by a Cast node, which
/// ONNX Runtime folds into a new initializer when it loads the graph; a different shape of the same elements costs
/// nothing (the initializer is declared with it). Nothing else converts weights: a second folded node on the same weight
/// (a Cast then a Transpose) keeps both results until loading ends, twice the weights at the peak, so matrices stay as
/// stored and <see cref="Value.Linear"/> multiplies by their transpose in the kernel.</para>
/// <para>Measured with <c>benchmarks/StableDiffusion.WeightsBenchmark</c> (1 GiB of weights, CPU): peak resident memory at
/// load 1.09 times the weights for a float32 file, and for a float16 file computed in float32 (against the float32
/// weights), where prepacking copies each matrix into ONNX Runtime's own layout; 2.09 times with a Cast then a Transpose,
/// 1.56 with a Transpose then a Cast. With <c>session.disable_prepacking</c> a weight used as stored is memory-mapped
/// from the file, unaligned offsets included, and loads in a fraction of a second.</para>
/// </remarks>
internal sealed class SafetensorsParameters : ParameterSource
{
    private readonly IReadOnlyList<SafetensorsFile> _files;
    private readonly Func<string, StoredWeightName?> _names;

    /// <summary>
    /// Weights from <paramref name="files"/> (all in one folder), computed in <paramref name="computeType"/>, found by the
    /// names the model asks for, or through <paramref name="names"/> for files that store them under other names (null: not in
    /// the files).
    /// </summary>
    public SafetensorsParameters(IReadOnlyList<SafetensorsFile> files, TensorElementType computeType = TensorElementType.Float, Func<string, StoredWeightName?>? names = null)
    {
        ArgumentOutOfRangeException.ThrowIfZero(files.Count);
        string[] folders = [.. files.Select(f => System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(f.Path))!).Distinct(StringComparer.Ordinal)];
        if (folders.Length != 1)
        {
            throw new ArgumentException($"The weight files of one graph must share a folder; they are in {string.Join(", ", folders)}.", nameof(files));
        }

        _files = files;
        _names = names ?? (key => new StoredWeightName(key));
        Folder = folders[0];
        ComputeType = computeType;
    }

    /// <inheritdoc/>
    public override string Folder { get; }

    /// <inheritdoc/>
    public override TensorElementType ComputeType { get; }

    /// <inheritdoc/>
    public override Value Load(GraphBuilder graph, string key, long[]? shape, TensorElementType? elementType = null)
    {
        (SafetensorsFile file, SafetensorsTensor tensor, long[] modelShape) = Find(key);
        long[] dims = shape ?? modelShape;
        long needed = dims.Aggregate(1L, (count, d) => count * d);
        // A view of another rank only needs the same elements; one of the same rank must be the stored shape itself,
        // or a transposed or mismatched matrix would pass for the right one.
        bool fits = dims.Length == modelShape.Length ? dims.AsSpan().SequenceEqual(modelShape) : needed == tensor.ElementCount;
        if (!fits)
        {
            throw new ModelLoadException(
                $"Tensor '{tensor.Name}' of '{file.Path}' is {tensor.Description}; the model needs [{string.Join(", ", dims)}] ({needed} elements){ForKey(key, tensor)}. " +
                "The weights do not belong to this model's configuration.", file.Path);
        }

        Value value = graph.ExternalInitializer(graph.UniqueName(key), tensor.ElementType, dims, System.IO.Path.GetFileName(file.Path), tensor.Offset, tensor.Length);
        return IsFloatingPoint(value.ElementType) ? value.Cast(elementType ?? ComputeType) : value;
    }

    /// <inheritdoc/>
    public override long[]? StoredShape(string key) => TryFind(key)?.ModelShape;

    private (SafetensorsFile File, SafetensorsTensor Tensor, long[] ModelShape) Find(string key) =>
        TryFind(key) ?? throw new ModelLoadException(
            $"The weights ({string.Join(", ", _files.Select(f => $"'{f.Path}'"))}) have no tensor {NameOf(key)}, which the model's configuration needs. " +
            "The files may belong to another model, or the configuration to other weights.", _files[0].Path);

    private (SafetensorsFile File, SafetensorsTensor Tensor, long[] ModelShape)? TryFind(string key)
    {
        if (_names(key) is not { } name)
        {
            return null;
        }

        foreach (SafetensorsFile file in _files)
        {
            if (file.Find(name.FileKey) is { } tensor)
            {
                return (file, tensor, name.AsMatrix ? MatrixShape(file, tensor, key) : tensor.Shape);
            }
        }

        return null;
    }

    // A 1x1 convolution's weight [out, in, 1, 1] (or [out, in, 1]) as the linear layer's [out, in] it is.
    private static long[] MatrixShape(SafetensorsFile file, SafetensorsTensor tensor, string key) =>
        tensor.Shape.Length >= 2 && tensor.Shape.Skip(2).All(d => d == 1) ? tensor.Shape[..2]
        : throw new ModelLoadException(
            $"Tensor '{tensor.Name}' of '{file.Path}' is {tensor.Description}; the model needs a matrix or a 1x1 convolution's weight{ForKey(key, tensor)}. " +
            "The file is damaged or does not hold this model.", file.Path);

    private string NameOf(string key) => _names(key) is { } name && name.FileKey != key ? $"'{name.FileKey}' (the model's '{key}')" : $"'{key}'";

    private static string ForKey(string key, SafetensorsTensor tensor) => tensor.Name == key ? "" : $" for its '{key}'";

    private static bool IsFloatingPoint(TensorElementType type) =>
        type is TensorElementType.Float or TensorElementType.Float16 or TensorElementType.BFloat16 or TensorElementType.Double;
}
