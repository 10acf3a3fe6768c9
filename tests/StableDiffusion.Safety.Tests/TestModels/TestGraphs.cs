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
    /// The mean-threshold checker with a chain of <paramref name="multiplications"/> 512 x 512 matrix products that depend
    /// on the input (so nothing is folded away) and do not change the answer: a run long enough to cancel inside.
    /// </summary>
    public static OnnxGraphBuilder SlowChecker(int multiplications)
    {
        const int n = 512;
        OnnxGraphBuilder builder = new OnnxGraphBuilder()
            .Input(SafetyChecker.ClipInputName, OnnxGraphBuilder.Float, ["batch", 3, "height", "width"])
            .Input(SafetyChecker.ImagesInputName, OnnxGraphBuilder.Float, ["batch", "image_height", "image_width", 3])
            .FloatInitializer("threshold", [], [0.5f])
            .FloatInitializer("zero", [], [0f])
            .FloatInitializer("weights", [n, n], Enumerable.Repeat(1f / n, n * n).ToArray())
            .Int64Initializer("one_by_one", [2], [1, 1])
            .Int64Initializer("square", [2], [n, n])
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
