namespace StableDiffusion.Safety.Tests.TestModels;

/// <summary>Synthetic safety checker graphs with a known rule: an image is flagged when the mean of its CLIP input exceeds a threshold.</summary>
internal static class TestGraphs
{
    /// <summary>
    /// A checker with diffusers' signature in the given element type: <c>has_nsfw_concepts = mean(clip_input) &gt; threshold</c>
    /// per image, <c>out_images = images</c>.
    /// </summary>
    public static OnnxGraphBuilder MeanThresholdChecker(int elementType = OnnxGraphBuilder.Float, float threshold = 0.5f, object[]? clipDims = null, object[]? imageDims = null) =>
        new OnnxGraphBuilder()
            .Input(SafetyChecker.ClipInputName, elementType, clipDims ?? ["batch", 3, "height", "width"])
            .Input(SafetyChecker.ImagesInputName, elementType, imageDims ?? ["batch", "image_height", "image_width", 3])
            .FloatInitializer("threshold", [], [threshold])
            .Node("Cast", [SafetyChecker.ClipInputName], ["clip32"], ("to", (long)OnnxGraphBuilder.Float))
            .Node("ReduceMean", ["clip32"], ["mean"], ("axes", new long[] { 1, 2, 3 }), ("keepdims", 0L))
            .Node("Greater", ["mean", "threshold"], [SafetyChecker.HasNsfwConceptsName])
            .Node("Identity", [SafetyChecker.ImagesInputName], [SafetyChecker.OutputImagesName])
            .Output(SafetyChecker.OutputImagesName, elementType, ["batch", "image_height", "image_width", 3])
            .Output(SafetyChecker.HasNsfwConceptsName, OnnxGraphBuilder.Bool, ["batch"]);

    /// <summary>
    /// The mean-threshold checker plus a chain of <paramref name="multiplications"/> n x n matrix products, n = 8 x the
    /// image height, that depend on the input (nothing is folded away) and do not change the answer: tall images make
    /// runs long enough to cancel inside, small ones run quickly on the same session.
    /// </summary>
    public static OnnxGraphBuilder SlowChecker(int multiplications)
    {
        OnnxGraphBuilder builder = new OnnxGraphBuilder()
            .Input(SafetyChecker.ClipInputName, OnnxGraphBuilder.Float, ["batch", 3, "height", "width"])
            .Input(SafetyChecker.ImagesInputName, OnnxGraphBuilder.Float, ["batch", "image_height", "image_width", 3])
            .FloatInitializer("threshold", [], [0.5f])
            .FloatInitializer("zero", [], [0f])
            .Int64Initializer("height_axis", [], [1])
            .Int64Initializer("eight", [], [8])
            .Int64Initializer("one_element", [1], [1])
            .Int64Initializer("one_by_one", [2], [1, 1])
            .Node("Shape", [SafetyChecker.ImagesInputName], ["image_shape"])
            .Node("Gather", ["image_shape", "height_axis"], ["height"])
            .Node("Mul", ["height", "eight"], ["n"])
            .Node("Reshape", ["n", "one_element"], ["n1"])
            .Node("Concat", ["n1", "n1"], ["square"], ("axis", 0L))
            .Node("Cast", ["n"], ["n_float"], ("to", (long)OnnxGraphBuilder.Float))
            .Node("Reciprocal", ["n_float"], ["inverse"])
            .Node("Reshape", ["inverse", "one_by_one"], ["inverse_1x1"])
            .Node("Expand", ["inverse_1x1", "square"], ["weights"])
            .Node("ReduceMean", [SafetyChecker.ClipInputName], ["mean"], ("axes", new long[] { 1, 2, 3 }), ("keepdims", 0L))
            .Node("ReduceMean", [SafetyChecker.ClipInputName], ["overall"], ("keepdims", 1L))
            .Node("Reshape", ["overall", "one_by_one"], ["seed"])
            .Node("Expand", ["seed", "square"], ["x0"]);
        for (int i = 0; i < multiplications; i++)
        {
            builder.Node("MatMul", [$"x{i}", "weights"], [$"x{i + 1}"]);
        }

        return builder
            .Node("ReduceSum", [$"x{multiplications}"], ["sum"], ("keepdims", 0L))
            .Node("Mul", ["sum", "zero"], ["nothing"])
            .Node("Add", ["mean", "nothing"], ["score"])
            .Node("Greater", ["score", "threshold"], [SafetyChecker.HasNsfwConceptsName])
            .Node("Identity", [SafetyChecker.ImagesInputName], [SafetyChecker.OutputImagesName])
            .Output(SafetyChecker.OutputImagesName, OnnxGraphBuilder.Float, ["batch", "image_height", "image_width", 3])
            .Output(SafetyChecker.HasNsfwConceptsName, OnnxGraphBuilder.Bool, ["batch"]);
    }
}
