namespace StableDiffusion.Models;

/// <summary>What a single weights file holds, as far as its tensor names and shapes tell.</summary>
public enum CheckpointKind
{
    /// <summary>Not a model this SDK recognizes.</summary>
    Unknown,

    /// <summary>A Stable Diffusion 1.x checkpoint in the original layout: UNet, VAE and CLIP text encoder.</summary>
    StableDiffusion1,

    /// <summary>A Stable Diffusion 1.x inpainting checkpoint (a UNet with 9 input channels).</summary>
    StableDiffusion1Inpainting,

    /// <summary>A Stable Diffusion 2.x checkpoint (an OpenCLIP text encoder, 1024-wide cross-attention).</summary>
    StableDiffusion2,

    /// <summary>A Stable Diffusion XL checkpoint (two text encoders under <c>conditioner.embedders</c>).</summary>
    StableDiffusionXL,

    /// <summary>A LoRA: low-rank updates to a model's weights, not a model.</summary>
    Lora,

    /// <summary>A textual inversion embedding: new token vectors, not a model.</summary>
    TextualInversion,

    /// <summary>A VAE alone.</summary>
    Vae,

    /// <summary>A ControlNet.</summary>
    ControlNet,

    /// <summary>One component of a diffusers folder (a UNet, VAE or text encoder file with diffusers' names).</summary>
    DiffusersComponent,
}
