using StableDiffusion.Imaging;

namespace StableDiffusion.ImageGeneration;

/// <summary>Settings of a <see cref="StableDiffusionImageGenerator"/>.</summary>
public sealed record StableDiffusionImageGeneratorOptions
{
    /// <summary>
    /// Decodes the encoded original images and masks of editing requests (bytes and media type to pixels), for example
    /// <c>(bytes, _) =&gt; SkiaImageCodec.Decode(new MemoryStream(bytes.ToArray()))</c> from StableDiffusion.SkiaSharp.
    /// The SDK reads no image formats itself; without a decoder, pass images as <see cref="RgbImage"/>s
    /// (<see cref="StableDiffusionImageGenerator.ToContent"/>).
    /// </summary>
    public Func<ReadOnlyMemory<byte>, string, RgbImage>? ImageDecoder { get; init; }
}
