using System.Numerics.Tensors;
using StableDiffusion.Imaging;

namespace StableDiffusion.Pipelines;

/// <summary>
/// What a generation returns (diffusers' <c>StableDiffusionPipelineOutput</c> and more): the images, the settings that
/// made each, the raw tensors, the safety checker's flags, the seed and the time each stage took.
/// </summary>
/// <remarks>
/// The images are library-neutral <see cref="RgbImage"/>s: save them as PNG with their settings
/// (<see cref="SaveImage(string, int)"/>), or convert them with the StableDiffusion.ImageSharp or StableDiffusion.SkiaSharp
/// packages. Disposing a result is optional today (it holds managed memory only); results stay disposable so that a later
/// version may hand back pooled or device memory without breaking callers that dispose them.
/// </remarks>
public sealed class GenerationResult : IDisposable
{
    private readonly Lazy<IReadOnlyList<GenerationParameters>> _parameters;

    internal GenerationResult(IReadOnlyList<RgbImage> images, Func<IReadOnlyList<GenerationParameters>> parameters, Tensor<float> imageTensor,
        IReadOnlyList<bool>? nsfwContentDetected, Tensor<float> latents, Tensor<float> promptEmbeds, ulong? seed, GenerationTimings timings)
    {
        Images = images;
        _parameters = new Lazy<IReadOnlyList<GenerationParameters>>(parameters);
        ImageTensor = imageTensor;
        NsfwContentDetected = nsfwContentDetected;
        Latents = latents;
        PromptEmbeds = promptEmbeds;
        Seed = seed;
        Timings = timings;
    }

    /// <summary>The images, in prompt order (each prompt's images together); flagged images are black.</summary>
    public IReadOnlyList<RgbImage> Images { get; }

    /// <summary>The settings that made each image, in the order of <see cref="Images"/>: what
    /// <see cref="SaveImage(string, int)"/> stores in the PNG's <c>parameters</c> chunk, as web UIs write it.</summary>
    public IReadOnlyList<GenerationParameters> Parameters => _parameters.Value;

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

    /// <summary>Saves image <paramref name="index"/> as a PNG file with its settings in the <c>parameters</c> chunk,
    /// replacing an existing file (see <see cref="RgbImage.SaveAsPng(string, GenerationParameters?)"/>).</summary>
    /// <param name="path">The file to write.</param>
    /// <param name="index">Which image.</param>
    public void SaveImage(string path, int index = 0) => Images[index].SaveAsPng(path, Parameters[index]);

    /// <summary>Saves image <paramref name="index"/> as a PNG file with its settings in the <c>parameters</c> chunk.</summary>
    /// <param name="path">The file to write.</param>
    /// <param name="index">Which image.</param>
    /// <param name="cancellationToken">Cancels the write; the target is then left as it was.</param>
    public Task SaveImageAsync(string path, int index = 0, CancellationToken cancellationToken = default) =>
        Images[index].SaveAsPngAsync(path, Parameters[index], cancellationToken);

    /// <summary>Writes image <paramref name="index"/> as PNG, with its settings, to a stream (which stays open).</summary>
    /// <param name="stream">A writable stream.</param>
    /// <param name="index">Which image.</param>
    public void SaveImage(Stream stream, int index = 0) => Images[index].SaveAsPng(stream, Parameters[index]);

    /// <summary>Writes image <paramref name="index"/> as PNG, with its settings, to a stream (which stays open).</summary>
    /// <param name="stream">A writable stream.</param>
    /// <param name="index">Which image.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    public Task SaveImageAsync(Stream stream, int index = 0, CancellationToken cancellationToken = default) =>
        Images[index].SaveAsPngAsync(stream, Parameters[index], cancellationToken);

    /// <summary>Image <paramref name="index"/> as a PNG file's bytes, with its settings.</summary>
    /// <param name="index">Which image.</param>
    public byte[] ToPng(int index = 0) => Images[index].ToPng(Parameters[index]);

    /// <summary>Does nothing today; see the remarks on <see cref="GenerationResult"/>.</summary>
    public void Dispose()
    {
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
