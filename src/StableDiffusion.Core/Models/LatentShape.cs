namespace StableDiffusion.Models;

/// <summary>
/// The shape of a batch of latents, or of a UNet sample: [batch, channels, height, width], with the lengths and shape
/// arrays the tensor APIs take. The numbers that travel together through a generation, in one value.
/// </summary>
/// <param name="Batch">Rows: images, or twice the images when guidance doubles the UNet batch.</param>
/// <param name="Channels">Channels per row (the model's latent channels, or more for an inpainting UNet's sample).</param>
/// <param name="Height">Latent height (the image height over the VAE scale factor).</param>
/// <param name="Width">Latent width.</param>
internal readonly record struct LatentShape(int Batch, int Channels, int Height, int Width)
{
    /// <summary>Values in one channel of one row.</summary>
    public int PlaneLength => Height * Width;

    /// <summary>Values in one row.</summary>
    public int RowLength => Channels * PlaneLength;

    /// <summary>Values in the whole batch.</summary>
    public int ElementCount => Batch * RowLength;

    /// <summary>This shape with another batch size.</summary>
    public LatentShape WithBatch(int batch) => this with { Batch = batch };

    /// <summary>This shape with another channel count.</summary>
    public LatentShape WithChannels(int channels) => this with { Channels = channels };

    /// <summary>The lengths a <c>Tensor</c> or <c>TensorSpan</c> takes.</summary>
    public nint[] ToLengths() => [Batch, Channels, Height, Width];

    /// <summary>The dimensions an ONNX Runtime tensor takes.</summary>
    public long[] ToDimensions() => [Batch, Channels, Height, Width];

    /// <inheritdoc />
    public override string ToString() => $"[{Batch}, {Channels}, {Height}, {Width}]";
}
