using System.Globalization;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace StableDiffusion.Safety;

/// <summary>
/// The inputs and outputs of a safety checker graph as diffusers exports it (<c>StableDiffusionSafetyChecker.forward_onnx</c>),
/// read from the session's metadata and checked once, so that every run binds by name with the right element types.
/// </summary>
internal sealed class SafetyCheckerSignature
{
    private SafetyCheckerSignature(TensorElementType clipInputType, int[] clipInputDimensions, TensorElementType? imagesType, int[]? imagesDimensions)
    {
        ClipInputType = clipInputType;
        ClipInputDimensions = clipInputDimensions;
        ImagesType = imagesType;
        ImagesDimensions = imagesDimensions;
    }

    /// <summary>Float or Float16.</summary>
    public TensorElementType ClipInputType { get; }

    /// <summary>[batch, 3, height, width]; -1 where the graph leaves a dimension free.</summary>
    public int[] ClipInputDimensions { get; }

    /// <summary>Whether the graph takes the decoded images (and returns them blacked out), as diffusers' export does; a
    /// graph that gives the verdict alone does not.</summary>
    public bool TakesImages => ImagesType is not null;

    /// <summary>Float or Float16; null when the graph does not take the images.</summary>
    public TensorElementType? ImagesType { get; }

    /// <summary>[batch, height, width, 3]; -1 where the graph leaves a dimension free; null when the graph does not take the images.</summary>
    public int[]? ImagesDimensions { get; }

    /// <summary>Reads and checks the signature.</summary>
    /// <exception cref="SafetyCheckerModelException">The graph is not a safety checker.</exception>
    public static SafetyCheckerSignature Read(InferenceSession session, string where, string? modelPath)
    {
        IReadOnlyDictionary<string, NodeMetadata> inputs = session.InputMetadata;
        IReadOnlyDictionary<string, NodeMetadata> outputs = session.OutputMetadata;

        string? problem = null;
        NodeMetadata? clipInput = Find(inputs, SafetyChecker.ClipInputName, "input", ref problem);
        NodeMetadata? flags = Find(outputs, SafetyChecker.HasNsfwConceptsName, "output", ref problem);

        // The images come in and go out together (the export), or not at all (the verdict alone).
        NodeMetadata? images = inputs.GetValueOrDefault(SafetyChecker.ImagesInputName);
        NodeMetadata? outImages = outputs.GetValueOrDefault(SafetyChecker.OutputImagesName);
        if (problem is null && (images is null) != (outImages is null))
        {
            problem = images is null
                ? $"it has no input named '{SafetyChecker.ImagesInputName}' for its output '{SafetyChecker.OutputImagesName}'"
                : $"it has no output named '{SafetyChecker.OutputImagesName}' for its input '{SafetyChecker.ImagesInputName}'";
        }

        string[] extra = [.. inputs.Keys.Where(k => k is not (SafetyChecker.ClipInputName or SafetyChecker.ImagesInputName))];
        if (problem is null && extra.Length > 0)
        {
            problem = $"it has inputs a safety checker does not take ({string.Join(", ", extra.Select(e => $"'{e}'"))})";
        }

        problem ??= CheckTensor(clipInput!, SafetyChecker.ClipInputName, channelAxis: 1)
            ?? (images is null ? null : CheckTensor(images, SafetyChecker.ImagesInputName, channelAxis: 3))
            ?? (outImages is null ? null : CheckFloat(outImages, SafetyChecker.OutputImagesName))
            ?? (flags!.OnnxValueType != OnnxValueType.ONNX_TYPE_TENSOR || flags.ElementDataType != TensorElementType.Bool
                ? $"output '{SafetyChecker.HasNsfwConceptsName}' is {Describe(flags)}, not a bool tensor"
                : null);

        if (problem is not null)
        {
            throw new SafetyCheckerModelException(
                $"{where} is not a Stable Diffusion safety checker graph: {problem}. Expected the graph diffusers exports: inputs " +
                $"'{SafetyChecker.ClipInputName}' (float or float16, [batch, 3, height, width]) and '{SafetyChecker.ImagesInputName}' " +
                $"(float or float16, [batch, height, width, 3]), outputs '{SafetyChecker.OutputImagesName}' and " +
                $"'{SafetyChecker.HasNsfwConceptsName}' (bool, [batch]); or '{SafetyChecker.ClipInputName}' in and " +
                $"'{SafetyChecker.HasNsfwConceptsName}' out alone. Found inputs {DescribeAll(inputs)}; outputs {DescribeAll(outputs)}.",
                modelPath);
        }

        return new SafetyCheckerSignature(clipInput!.ElementDataType, clipInput.Dimensions, images?.ElementDataType, images?.Dimensions);
    }

    private static NodeMetadata? Find(IReadOnlyDictionary<string, NodeMetadata> nodes, string name, string kind, ref string? problem)
    {
        if (nodes.TryGetValue(name, out NodeMetadata? node))
        {
            return node;
        }

        problem ??= $"it has no {kind} named '{name}'";
        return null;
    }

    private static string? CheckTensor(NodeMetadata node, string name, int channelAxis) =>
        CheckFloat(node, name)
        ?? (node.Dimensions.Length != 4
            ? $"input '{name}' has rank {node.Dimensions.Length}, not 4"
            : node.Dimensions[channelAxis] is not (3 or -1)
                ? $"input '{name}' has {node.Dimensions[channelAxis]} channels (dimension {channelAxis}), not 3"
                : node.Dimensions[0] is not (1 or -1)
                    ? $"input '{name}' has a fixed batch of {node.Dimensions[0]}, and a safety checker runs one image at a time (batch 1)"
                    : null);

    private static string? CheckFloat(NodeMetadata node, string name) =>
        node.OnnxValueType == OnnxValueType.ONNX_TYPE_TENSOR && node.ElementDataType is TensorElementType.Float or TensorElementType.Float16
            ? null
            : $"'{name}' is {Describe(node)}, not a float or float16 tensor";

    private static string DescribeAll(IReadOnlyDictionary<string, NodeMetadata> nodes) =>
        nodes.Count == 0 ? "(none)" : string.Join(", ", nodes.Select(n => $"'{n.Key}' {Describe(n.Value)}"));

    private static string Describe(NodeMetadata node) => node.OnnxValueType == OnnxValueType.ONNX_TYPE_TENSOR
        ? $"{node.ElementDataType} [{string.Join(", ", node.Dimensions.Select(d => d < 0 ? "?" : d.ToString(CultureInfo.InvariantCulture)))}]"
        : node.OnnxValueType.ToString();
}
