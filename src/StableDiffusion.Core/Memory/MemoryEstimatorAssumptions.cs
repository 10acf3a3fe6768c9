namespace StableDiffusion.Memory;

/// <summary>
/// What <see cref="GenerationMemoryEstimator"/> assumes about the model and the runtime; the defaults describe SD 1.x
/// (and the tiny test models, which keep its attention layout) in float32 on ONNX Runtime's CPU provider.
/// </summary>
public sealed record MemoryEstimatorAssumptions
{
    /// <summary>Attention heads of the UNet's highest-resolution self-attention (8 in SD 1.x: <c>attention_head_dim</c> 8).</summary>
    public int AttentionHeads { get; init; } = 8;

    /// <summary>
    /// Attention score matrices [rows, heads, tokens, tokens] alive at once at the peak (1: ONNX Runtime's plain attention
    /// graph reuses the scores' buffer for the softmax; measured at 19.8 GB for a 1024x1024 guided image).
    /// </summary>
    public double AttentionCopies { get; init; } = 1;

    /// <summary>Channels of the VAE decoder's full-resolution blocks (128 in SD 1.x).</summary>
    public int VaeChannels { get; init; } = 128;

    /// <summary>Full-resolution VAE activations alive at once (a block's input, its normalised copy and its output).</summary>
    public double VaeActivationCopies { get; init; } = 3;

    /// <summary>Pixels per latent along each side (8 in SD 1.x).</summary>
    public int VaeScaleFactor { get; init; } = 8;

    /// <summary>Bytes per activation element (4: float32; 2 for float16 models).</summary>
    public int ElementBytes { get; init; } = 4;

    /// <summary>Memory the request needs besides its activations, such as what the loaded sessions hold (0 by default: the
    /// estimate is the request's own).</summary>
    public long BaseBytes { get; init; }
}
