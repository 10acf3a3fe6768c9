using StableDiffusion.Onnx;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace StableDiffusion.Core.Tests.EndToEnd.Support;

/// <summary>
/// Small stand-ins for the text encoder, UNet and VAE whose outputs depend on every input (the timestep included), built
/// in each input convention that published exports use: float16 or float32 tensors, and a UNet timestep of float32,
/// float16, int64 or int32, shaped [1], [batch] or scalar. The computation inside is float32 and the same in every
/// convention, so two conventions must give the same image (bit for bit when the boundary conversion is exact).
/// </summary>
internal static class ConventionGraphs
{
    private const TensorElementType Float = TensorElementType.Float;

    /// <summary>Prompt embeddings [batch, 77, 32]: each token id times 1e-5, repeated over 32 features.</summary>
    public static byte[] TextEncoder(TensorElementType idsType, TensorElementType embeddingsType)
    {
        var graph = new GraphBuilder();
        Value ids = graph.Input("input_ids", idsType, "batch", 77);
        Value hidden = (ids.Cast(Float) * 1e-5f).Unsqueeze(2).Expand(graph.Int64s(1, 1, 32));
        graph.Output(hidden.Cast(embeddingsType), "last_hidden_state", "batch", 77, 32);
        return graph.ToBytes();
    }

    /// <summary>
    /// A "noise prediction" 0.5 sample + 0.001 timestep + 10 (first prompt token's embedding): a wrong timestep value, a
    /// timestep of another row, or swapped prompt rows all change the result. Only element-wise operations, so that the
    /// result does not depend on how ONNX Runtime orders a reduction (which can vary with buffer alignment).
    /// </summary>
    /// <param name="tensorType">The element type of the sample, embeddings and output.</param>
    /// <param name="timestepType">The element type of the timestep input.</param>
    /// <param name="timestepDimensions">The timestep's shape.</param>
    /// <param name="timestepWeight">How much the timestep adds to the prediction.</param>
    /// <param name="readsTimestepAsIs">
    /// Whether a node besides the Cast reads the timestep input in its own type (as a graph needing an integer timestep
    /// would), so the SDK cannot retype an integer input to float.
    /// </param>
    public static byte[] UNet(TensorElementType tensorType, TensorElementType timestepType, Dim[] timestepDimensions, float timestepWeight = 0.001f, bool readsTimestepAsIs = false)
    {
        var graph = new GraphBuilder();
        Value sample = graph.Input("sample", tensorType, "batch", 4, "height", "width");
        Value timestep = graph.Input("timestep", timestepType, timestepDimensions);
        if (readsTimestepAsIs)
        {
            graph.Output(timestep, "timestep_as_is", timestepDimensions);
        }

        Value hiddenStates = graph.Input("encoder_hidden_states", tensorType, "batch", 77, 32);
        graph.Output(Prediction(sample, timestep, hiddenStates, timestepWeight).Cast(tensorType), "out_sample", "batch", 4, "height", "width");
        return graph.ToBytes();
    }

    /// <summary>
    /// The float32 stand-in UNet with a per-channel offset added to its prediction: a graph input <paramref name="name"/>
    /// of shape <paramref name="dimensions"/> ([batch, 4]; a UNet input beyond the usual three, as LCM's <c>timestep_cond</c>),
    /// or, given <paramref name="constant"/>, the same offset built in as a [1, 4] initializer. Fed the constant on every
    /// row, the two graphs compute exactly the same thing. <paramref name="hiddenSize"/> is the prompt embeddings' width
    /// (a number, or a name to take any text encoder's).
    /// </summary>
    public static byte[] UNetWithOffset(string name, Dim[]? dimensions = null, float[]? constant = null, Dim? hiddenSize = null)
    {
        var graph = new GraphBuilder();
        Value sample = graph.Input("sample", Float, "batch", 4, "height", "width");
        Value offset = constant is null ? graph.Input(name, Float, dimensions ?? ["batch", 4]) : graph.Initializer(name, [1, 4], constant);
        Value timestep = graph.Input("timestep", Float, 1);
        Value hiddenStates = graph.Input("encoder_hidden_states", Float, "batch", 77, hiddenSize ?? 32);
        Value prediction = Prediction(sample, timestep, hiddenStates, 0.001f) + offset.Reshape(-1, 4, 1, 1);
        graph.Output(prediction, "out_sample", "batch", 4, "height", "width");
        return graph.ToBytes();
    }

    // 0.5 sample + weight * timestep + 10 * (the first prompt token's first feature), in float32.
    private static Value Prediction(Value sample, Value timestep, Value hiddenStates, float timestepWeight)
    {
        Value timestepTerm = timestep.Cast(Float).Reshape(-1, 1, 1, 1) * timestepWeight;
        Value promptTerm = hiddenStates.Cast(Float).Slice([1, 0], [2, 1], [1, 2]).Unsqueeze(3) * 10f;
        return (sample.Cast(Float) * 0.5f) + timestepTerm + promptTerm;
    }

    /// <summary>Images [batch, 3, 8h, 8w]: tanh of the first three latent channels / 500, tiled 8 x 8 (the latents reach about 70, divided by 0.18215 first).</summary>
    public static byte[] VaeDecoder(TensorElementType tensorType)
    {
        var graph = new GraphBuilder();
        Value latents = graph.Input("latent_sample", tensorType, "batch", 4, "height", "width");
        Value pixels = (latents.Cast(Float).Slice([0], [3], [1]) * 0.002f).Tanh();
        Value tiled = graph.Node("Tile", [pixels, graph.Int64s(1, 1, 8, 8)]);
        graph.Output(tiled.Cast(tensorType), "sample", "batch", 3, "image_height", "image_width");
        return graph.ToBytes();
    }

    /// <summary>Optimum's convention: <c>latent_parameters</c> [batch, 8, h, w] (mean, log-variance) from 8 x 8 averages of the image.</summary>
    public static byte[] VaeEncoder(TensorElementType tensorType)
    {
        var graph = new GraphBuilder();
        Value image = graph.Input("sample", tensorType, "batch", 3, "height", "width");
        Value pooled = graph.Node("AveragePool", [image.Cast(Float)], attributes: [("kernel_shape", new long[] { 8, 8 }), ("strides", new long[] { 8, 8 })]);
        Value parameters = Value.Concat(1, pooled, pooled, pooled).Slice([0], [8], [1]);
        graph.Output(parameters.Cast(tensorType), "latent_parameters", "batch", 8, "latent_height", "latent_width");
        return graph.ToBytes();
    }
}
