using System.Numerics.Tensors;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace StableDiffusion.Pipelines;

/// <summary>
/// What a generation returns (diffusers' <c>StableDiffusionPipelineOutput</c> and more): the images, the raw tensors, the
/// safety checker's flags, the seed and the time each stage took. Dispose it to return the images' pooled memory.
/// </summary>
public sealed class GenerationResult : IDisposable
{
    internal GenerationResult(IReadOnlyList<Image<Rgb24>> images, Tensor<float> imageTensor, IReadOnlyList<bool>? nsfwContentDetected,
        Tensor<float> latents, Tensor<float> promptEmbeds, ulong? seed, GenerationTimings timings)
    {
        Images = images;
        ImageTensor = imageTensor;
        NsfwContentDetected = nsfwContentDetected;
        Latents = latents;
        PromptEmbeds = promptEmbeds;
        Seed = seed;
        Timings = timings;
    }

    /// <summary>The images, in prompt order (each prompt's images together); flagged images are black.</summary>
    public IReadOnlyList<Image<Rgb24>> Images { get; }

    /// <summary>The images as diffusers' <c>output_type="np"</c> gives them: NHWC float32 in [0, 1].</summary>
    public Tensor<float> ImageTensor { get; }

    /// <summary>Per image, whether the safety checker flagged it (diffusers' <c>nsfw_content_detected</c>); null when the
    /// checker is off.</summary>
    public IReadOnlyList<bool>? NsfwContentDetected { get; }

    /// <summary>The final latents, before decoding.</summary>
    public Tensor<float> Latents { get; }

    /// <summary>The prompt embeddings the UNet saw ([unconditional, conditional] when guidance is on).</summary>
    public Tensor<float> PromptEmbeds { get; }

    /// <summary>The seed of the default generator, when the pipeline seeded it (null when a generator was passed).</summary>
    public ulong? Seed { get; }

    /// <summary>How long each stage took.</summary>
    public GenerationTimings Timings { get; }

    /// <summary>Saves image <paramref name="index"/> as PNG.</summary>
    /// <param name="path">The file to write.</param>
    /// <param name="index">Which image.</param>
    public void SaveImage(string path, int index = 0) => Images[index].SaveAsPng(path);

    /// <summary>Disposes the images.</summary>
    public void Dispose()
    {
        foreach (Image<Rgb24> image in Images)
        {
            image.Dispose();
        }
    }
}

/// <summary>Time spent in each stage of a generation.</summary>
/// <param name="PromptEncoding">Tokenizing and running the text encoder.</param>
/// <param name="ImageEncoding">Running the VAE encoder (image-to-image and inpainting).</param>
/// <param name="Denoising">The whole denoising loop.</param>
/// <param name="UNet">Inside the UNet, summed over the loop.</param>
/// <param name="Scheduler">Inside the scheduler (scaling and stepping), summed over the loop.</param>
/// <param name="UNetCalls">The number of UNet calls.</param>
/// <param name="Decoding">Running the VAE decoder.</param>
/// <param name="SafetyChecking">Pre-processing and running the safety checker.</param>
/// <param name="Total">The whole generation.</param>
public sealed record GenerationTimings(TimeSpan PromptEncoding, TimeSpan ImageEncoding, TimeSpan Denoising, TimeSpan UNet, TimeSpan Scheduler,
    int UNetCalls, TimeSpan Decoding, TimeSpan SafetyChecking, TimeSpan Total);
