using StableDiffusion.Safety.Tests.TestModels;

namespace StableDiffusion.Core.Tests.EndToEnd.Support;

/// <summary>
/// Small stand-ins for the text encoder, UNet and VAE whose outputs depend on every input (the timestep included), built
/// in each input convention that published exports use: float16 or float32 tensors, and a UNet timestep of float32,
/// float16, int64 or int32, shaped [1], [batch] or scalar. The computation inside is float32 and the same in every
/// convention, so two conventions must give the same image (bit for bit when the boundary conversion is exact).
/// </summary>
internal static class ConventionGraphs
{
    /// <summary>Prompt embeddings [batch, 77, 32]: each token id times 1e-5, repeated over 32 features.</summary>
    public static byte[] TextEncoder(int idsType, int embeddingsType) => new OnnxGraphBuilder()
        .Input("input_ids", idsType, ["batch", 77])
        .Int64Initializer("axes", [1], [2])
        .Int64Initializer("shape", [3], [1, 1, 32])
        .FloatInitializer("scale", [], [1e-5f])
        .Node("Cast", ["input_ids"], ["ids"], ("to", (long)OnnxGraphBuilder.Float))
        .Node("Mul", ["ids", "scale"], ["small"])
        .Node("Unsqueeze", ["small", "axes"], ["column"])
        .Node("Expand", ["column", "shape"], ["hidden"])
        .Node("Cast", ["hidden"], ["last_hidden_state"], ("to", (long)embeddingsType))
        .Output("last_hidden_state", embeddingsType, ["batch", 77, 32])
        .Build();

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
    public static byte[] UNet(int tensorType, int timestepType, object[] timestepDimensions, float timestepWeight = 0.001f, bool readsTimestepAsIs = false)
    {
        OnnxGraphBuilder graph = new OnnxGraphBuilder().Input("sample", tensorType, ["batch", 4, "height", "width"]);
        if (readsTimestepAsIs)
        {
            graph = graph.Node("Identity", ["timestep"], ["timestep_as_is"]).Output("timestep_as_is", timestepType, timestepDimensions);
        }

        return UNetBody(graph, tensorType, timestepType, timestepDimensions, timestepWeight);
    }

    private static byte[] UNetBody(OnnxGraphBuilder graph, int tensorType, int timestepType, object[] timestepDimensions, float timestepWeight) => graph
        .Input("timestep", timestepType, timestepDimensions)
        .Input("encoder_hidden_states", tensorType, ["batch", 77, 32])
        .Int64Initializer("per_row", [4], [-1, 1, 1, 1])
        .Int64Initializer("last_axis", [1], [3])
        .Int64Initializer("token_start", [2], [1, 0])
        .Int64Initializer("token_end", [2], [2, 1])
        .Int64Initializer("token_axes", [2], [1, 2])
        .FloatInitializer("half", [], [0.5f])
        .FloatInitializer("timestep_weight", [], [timestepWeight])
        .FloatInitializer("prompt_weight", [], [10f])
        .Node("Cast", ["sample"], ["s"], ("to", (long)OnnxGraphBuilder.Float))
        .Node("Cast", ["timestep"], ["t"], ("to", (long)OnnxGraphBuilder.Float))
        .Node("Reshape", ["t", "per_row"], ["t_rows"])
        .Node("Mul", ["t_rows", "timestep_weight"], ["t_term"])
        .Node("Cast", ["encoder_hidden_states"], ["h"], ("to", (long)OnnxGraphBuilder.Float))
        .Node("Slice", ["h", "token_start", "token_end", "token_axes"], ["h_token"])
        .Node("Unsqueeze", ["h_token", "last_axis"], ["h_rows"])
        .Node("Mul", ["h_rows", "prompt_weight"], ["h_term"])
        .Node("Mul", ["s", "half"], ["s_term"])
        .Node("Add", ["s_term", "t_term"], ["partial"])
        .Node("Add", ["partial", "h_term"], ["prediction"])
        .Node("Cast", ["prediction"], ["out_sample"], ("to", (long)tensorType))
        .Output("out_sample", tensorType, ["batch", 4, "height", "width"])
        .Build();

    /// <summary>Images [batch, 3, 8h, 8w]: tanh of the first three latent channels / 500, tiled 8 x 8 (the latents reach about 70, divided by 0.18215 first).</summary>
    public static byte[] VaeDecoder(int tensorType) => new OnnxGraphBuilder()
        .Input("latent_sample", tensorType, ["batch", 4, "height", "width"])
        .Int64Initializer("starts", [1], [0])
        .Int64Initializer("ends", [1], [3])
        .Int64Initializer("axes", [1], [1])
        .Int64Initializer("repeats", [4], [1, 1, 8, 8])
        .FloatInitializer("gain", [], [0.002f])
        .Node("Cast", ["latent_sample"], ["latents"], ("to", (long)OnnxGraphBuilder.Float))
        .Node("Slice", ["latents", "starts", "ends", "axes"], ["rgb"])
        .Node("Mul", ["rgb", "gain"], ["scaled"])
        .Node("Tanh", ["scaled"], ["pixels"])
        .Node("Tile", ["pixels", "repeats"], ["tiled"])
        .Node("Cast", ["tiled"], ["sample"], ("to", (long)tensorType))
        .Output("sample", tensorType, ["batch", 3, "image_height", "image_width"])
        .Build();

    /// <summary>Optimum's convention: <c>latent_parameters</c> [batch, 8, h, w] (mean, log-variance) from 8 x 8 averages of the image.</summary>
    public static byte[] VaeEncoder(int tensorType) => new OnnxGraphBuilder()
        .Input("sample", tensorType, ["batch", 3, "height", "width"])
        .Int64Initializer("starts", [1], [0])
        .Int64Initializer("ends", [1], [8])
        .Int64Initializer("axes", [1], [1])
        .Node("Cast", ["sample"], ["image"], ("to", (long)OnnxGraphBuilder.Float))
        .Node("AveragePool", ["image"], ["pooled"], ("kernel_shape", new long[] { 8, 8 }), ("strides", new long[] { 8, 8 }))
        .Node("Concat", ["pooled", "pooled", "pooled"], ["nine"], ("axis", 1L))
        .Node("Slice", ["nine", "starts", "ends", "axes"], ["parameters"])
        .Node("Cast", ["parameters"], ["latent_parameters"], ("to", (long)tensorType))
        .Output("latent_parameters", tensorType, ["batch", 8, "latent_height", "latent_width"])
        .Build();
}
