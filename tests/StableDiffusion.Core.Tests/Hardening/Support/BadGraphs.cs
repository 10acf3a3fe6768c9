using StableDiffusion.Onnx;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace StableDiffusion.Core.Tests.Hardening.Support;

/// <summary>Small ONNX graphs that look like a Stable Diffusion component but break one of its conventions.</summary>
internal static class BadGraphs
{
    private const TensorElementType Float = TensorElementType.Float;

    /// <summary>A UNet whose <c>sample</c> input is int64.</summary>
    public static byte[] UNetWithIntegerSample() => UNet(TensorElementType.Int64, timestepDimensions: [1], withHiddenStates: true);

    /// <summary>A UNet whose timestep is a matrix.</summary>
    public static byte[] UNetWithMatrixTimestep() => UNet(Float, timestepDimensions: [1, 1], withHiddenStates: true);

    /// <summary>A UNet without the prompt embeddings input.</summary>
    public static byte[] UNetWithoutHiddenStates() => UNet(Float, timestepDimensions: [1], withHiddenStates: false);

    /// <summary>A text encoder taking float ids.</summary>
    public static byte[] TextEncoderWithFloatIds() => TextEncoder(Float, hidden: 32);

    /// <summary>A text encoder whose embeddings are <paramref name="hidden"/> wide (the tiny UNet expects 32).</summary>
    public static byte[] TextEncoderWithHiddenSize(int hidden) => TextEncoder(TensorElementType.Int32, hidden);

    /// <summary>A VAE decoder taking int32 latents.</summary>
    public static byte[] VaeDecoderWithIntegerLatents()
    {
        var graph = new GraphBuilder();
        Value latents = graph.Input("latent_sample", TensorElementType.Int32, "batch", 4, "height", "width");
        graph.Output(graph.Node("Tile", [latents.Cast(Float), graph.Int64s(1, 1, 8, 8)]), "sample", "batch", 4, "image_height", "image_width");
        return graph.ToBytes();
    }

    /// <summary>A VAE decoder whose output has rank 3.</summary>
    public static byte[] VaeDecoderWithRank3Output()
    {
        var graph = new GraphBuilder();
        Value latents = graph.Input("latent_sample", Float, "batch", 4, "height", "width");
        graph.Output(graph.Node("ReduceSum", [latents, graph.Int64s(1)], attributes: ("keepdims", 0L)), "sample", "batch", "height", "width");
        return graph.ToBytes();
    }

    // sample [batch, 4, h, w] -> out_sample (a float32 copy), with a timestep input and optionally the prompt embeddings.
    private static byte[] UNet(TensorElementType sampleType, Dim[] timestepDimensions, bool withHiddenStates)
    {
        var graph = new GraphBuilder();
        Value sample = graph.Input("sample", sampleType, "batch", 4, "height", "width");
        graph.Input("timestep", Float, timestepDimensions);
        if (withHiddenStates)
        {
            graph.Input("encoder_hidden_states", Float, "batch", 77, 32);
        }

        graph.Output(sample.Cast(Float), "out_sample", "batch", 4, "height", "width");
        return graph.ToBytes();
    }

    // ids [batch, 77] -> float, unsqueezed and expanded to [batch, 77, hidden].
    private static byte[] TextEncoder(TensorElementType idsType, int hidden)
    {
        var graph = new GraphBuilder();
        Value ids = graph.Input("input_ids", idsType, "batch", 77);
        graph.Output(ids.Cast(Float).Unsqueeze(2).Expand(graph.Int64s(1, 1, hidden)), "last_hidden_state", "batch", 77, hidden);
        return graph.ToBytes();
    }
}
