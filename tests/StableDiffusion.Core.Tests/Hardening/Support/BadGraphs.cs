using StableDiffusion.Safety.Tests.TestModels;

namespace StableDiffusion.Core.Tests.Hardening.Support;

/// <summary>Small ONNX graphs that look like a Stable Diffusion component but break one of its conventions.</summary>
internal static class BadGraphs
{
    /// <summary>A UNet whose <c>sample</c> input is int64.</summary>
    public static byte[] UNetWithIntegerSample() => new OnnxGraphBuilder()
        .Input("sample", OnnxGraphBuilder.Int64, ["batch", 4, "height", "width"])
        .Input("timestep", OnnxGraphBuilder.Float, [1])
        .Input("encoder_hidden_states", OnnxGraphBuilder.Float, ["batch", 77, 32])
        .Node("Cast", ["sample"], ["out_sample"], ("to", (long)OnnxGraphBuilder.Float))
        .Output("out_sample", OnnxGraphBuilder.Float, ["batch", 4, "height", "width"])
        .Build();

    /// <summary>A UNet whose timestep is a matrix.</summary>
    public static byte[] UNetWithMatrixTimestep() => new OnnxGraphBuilder()
        .Input("sample", OnnxGraphBuilder.Float, ["batch", 4, "height", "width"])
        .Input("timestep", OnnxGraphBuilder.Float, [1, 1])
        .Input("encoder_hidden_states", OnnxGraphBuilder.Float, ["batch", 77, 32])
        .Node("Identity", ["sample"], ["out_sample"])
        .Output("out_sample", OnnxGraphBuilder.Float, ["batch", 4, "height", "width"])
        .Build();

    /// <summary>A UNet without the prompt embeddings input.</summary>
    public static byte[] UNetWithoutHiddenStates() => new OnnxGraphBuilder()
        .Input("sample", OnnxGraphBuilder.Float, ["batch", 4, "height", "width"])
        .Input("timestep", OnnxGraphBuilder.Float, [1])
        .Node("Identity", ["sample"], ["out_sample"])
        .Output("out_sample", OnnxGraphBuilder.Float, ["batch", 4, "height", "width"])
        .Build();

    /// <summary>A text encoder taking float ids.</summary>
    public static byte[] TextEncoderWithFloatIds() => TextEncoder(OnnxGraphBuilder.Float, hidden: 32);

    /// <summary>A text encoder whose embeddings are <paramref name="hidden"/> wide (the tiny UNet expects 32).</summary>
    public static byte[] TextEncoderWithHiddenSize(int hidden) => TextEncoder(OnnxGraphBuilder.Int32, hidden);

    /// <summary>A VAE decoder taking int32 latents.</summary>
    public static byte[] VaeDecoderWithIntegerLatents() => new OnnxGraphBuilder()
        .Input("latent_sample", OnnxGraphBuilder.Int32, ["batch", 4, "height", "width"])
        .Int64Initializer("upscale", [4], [1, 1, 8, 8])
        .Node("Cast", ["latent_sample"], ["latents"], ("to", (long)OnnxGraphBuilder.Float))
        .Node("Tile", ["latents", "upscale"], ["sample"])
        .Output("sample", OnnxGraphBuilder.Float, ["batch", 4, "image_height", "image_width"])
        .Build();

    /// <summary>A VAE decoder whose output has rank 3.</summary>
    public static byte[] VaeDecoderWithRank3Output() => new OnnxGraphBuilder()
        .Input("latent_sample", OnnxGraphBuilder.Float, ["batch", 4, "height", "width"])
        .Int64Initializer("axes", [1], [1])
        .Node("ReduceSum", ["latent_sample", "axes"], ["sample"], ("keepdims", 0L))
        .Output("sample", OnnxGraphBuilder.Float, ["batch", "height", "width"])
        .Build();

    // ids [batch, 77] -> float, unsqueezed and expanded to [batch, 77, hidden].
    private static byte[] TextEncoder(int idsType, int hidden) => new OnnxGraphBuilder()
        .Input("input_ids", idsType, ["batch", 77])
        .Int64Initializer("axes", [1], [2])
        .Int64Initializer("shape", [3], [1, 1, hidden])
        .Node("Cast", ["input_ids"], ["ids"], ("to", (long)OnnxGraphBuilder.Float))
        .Node("Unsqueeze", ["ids", "axes"], ["column"])
        .Node("Expand", ["column", "shape"], ["last_hidden_state"])
        .Output("last_hidden_state", OnnxGraphBuilder.Float, ["batch", 77, hidden])
        .Build();
}
