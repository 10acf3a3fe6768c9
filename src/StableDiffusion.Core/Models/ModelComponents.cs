namespace StableDiffusion.Models;

/// <summary>The component names of a diffusers ONNX Stable Diffusion folder, as in <c>model_index.json</c>.</summary>
public static class ModelComponents
{
    /// <summary>The CLIP text encoder.</summary>
    public const string TextEncoder = "text_encoder";

    /// <summary>The denoising UNet.</summary>
    public const string UNet = "unet";

    /// <summary>The VAE decoder (latents to images).</summary>
    public const string VaeDecoder = "vae_decoder";

    /// <summary>The VAE encoder (images to latents; image-to-image and inpainting).</summary>
    public const string VaeEncoder = "vae_encoder";

    /// <summary>The safety checker.</summary>
    public const string SafetyChecker = "safety_checker";

    /// <summary>The CLIP tokenizer folder.</summary>
    public const string Tokenizer = "tokenizer";

    /// <summary>The scheduler configuration folder.</summary>
    public const string Scheduler = "scheduler";

    /// <summary>The safety checker's image pre-processing configuration folder.</summary>
    public const string FeatureExtractor = "feature_extractor";
}
