using StableDiffusion.Imaging;

namespace StableDiffusion.Pipelines;

/// <summary>Progress of a generation, reported through <see cref="IProgress{T}"/>.</summary>
/// <param name="Stage">The stage running.</param>
/// <param name="Step">Within the denoising stage, the number of steps done; otherwise 0 at the start of the stage.</param>
/// <param name="TotalSteps">The number of denoising steps (UNet evaluations) in the loop.</param>
/// <param name="Elapsed">Time since the generation started.</param>
public readonly record struct GenerationProgress(GenerationStage Stage, int Step, int TotalSteps, TimeSpan Elapsed)
{
    /// <summary>After a denoising step, the first image's preview when the request asked for previews
    /// (<see cref="DiffusionRequest.Preview"/>) and the step is one to show; otherwise null.</summary>
    public RgbImage? Preview { get; init; }

    /// <summary>In the <see cref="GenerationStage.Completed"/> report, the generation's result; otherwise null.</summary>
    public GenerationResult? Result { get; init; }
}

/// <summary>The stages of a generation, in order.</summary>
public enum GenerationStage
{
    /// <summary>Tokenizing and encoding the prompts.</summary>
    EncodingPrompt,

    /// <summary>Encoding the input image (image-to-image and inpainting).</summary>
    EncodingImage,

    /// <summary>The denoising loop.</summary>
    Denoising,

    /// <summary>Decoding the latents with the VAE.</summary>
    Decoding,

    /// <summary>Running the safety checker.</summary>
    SafetyChecking,

    /// <summary>Done.</summary>
    Completed,
}
