extern alias core;

using core::StableDiffusion.Onnx;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace StableDiffusion.Safety.Tests.TestModels;

/// <summary>Synthetic safety checker graphs with a known rule: an image is flagged when the mean of its CLIP input exceeds a threshold.</summary>
internal static class TestGraphs
{
    /// <summary>
    /// A checker with diffusers' signature in the given element type: <c>has_nsfw_concepts = mean(clip_input) &gt; threshold</c>
    /// per image, <c>out_images = images</c>; without <paramref name="takesImages"/>, the verdict alone (no images in or out).
    /// </summary>
    public static byte[] MeanThresholdChecker(TensorElementType elementType = TensorElementType.Float, float threshold = 0.5f, Dim[]? clipDims = null, Dim[]? imageDims = null,
        bool takesImages = true)
    {
        var graph = new GraphBuilder();
        Value clip = graph.Input(SafetyChecker.ClipInputName, elementType, clipDims ?? ["batch", 3, "height", "width"]);
        Value flags = clip.Cast(TensorElementType.Float).ReduceMean([1, 2, 3], keepDimensions: false).Greater(graph.Scalar(threshold));
        if (takesImages)
        {
            Value images = graph.Input(SafetyChecker.ImagesInputName, elementType, imageDims ?? ["batch", "image_height", "image_width", 3]);
            graph.Output(images, SafetyChecker.OutputImagesName, imageDims ?? ["batch", "image_height", "image_width", 3]);
        }

        graph.Output(flags, SafetyChecker.HasNsfwConceptsName, "batch");
        return graph.ToBytes();
    }

    /// <summary>
    /// The mean-threshold checker plus a chain of <paramref name="multiplications"/> n x n matrix products, n = 8 x the
    /// image height, that depend on the input (nothing is folded away) and do not change the answer: tall images make
    /// runs long enough to cancel inside, small ones run quickly on the same session.
    /// </summary>
    public static byte[] SlowChecker(int multiplications)
    {
        var graph = new GraphBuilder();
        Value clip = graph.Input(SafetyChecker.ClipInputName, TensorElementType.Float, "batch", 3, "height", "width");
        Value images = graph.Input(SafetyChecker.ImagesInputName, TensorElementType.Float, "batch", "image_height", "image_width", 3);
        Value n = images.Shape().Gather(graph.Int64(1)) * graph.Int64(8);
        Value n1 = n.Reshape(1);
        Value square = Value.Concat(0, n1, n1);
        Value weights = graph.Node("Reciprocal", [n.Cast(TensorElementType.Float)]).Reshape(1, 1).Expand(square);
        Value mean = clip.ReduceMean([1, 2, 3], keepDimensions: false);
        Value x = graph.Node("ReduceMean", [clip], attributes: ("keepdims", 1L)).Reshape(1, 1).Expand(square);
        for (int i = 0; i < multiplications; i++)
        {
            x = x.MatMul(weights);
        }

        Value nothing = graph.Node("ReduceSum", [x], attributes: ("keepdims", 0L)) * 0f;
        graph.Output(images, SafetyChecker.OutputImagesName, "batch", "image_height", "image_width", 3);
        graph.Output((mean + nothing).Greater(graph.Scalar(0.5f)), SafetyChecker.HasNsfwConceptsName, "batch");
        return graph.ToBytes();
    }

    /// <summary>Writes <paramref name="model"/> to a new temporary file and returns its path.</summary>
    public static string Save(byte[] model)
    {
        string path = Path.Combine(Path.GetTempPath(), $"sd-safety-test-{Guid.NewGuid():N}.onnx");
        File.WriteAllBytes(path, model);
        return path;
    }
}
