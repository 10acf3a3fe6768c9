using StableDiffusion.Models;

namespace StableDiffusion.Loading.SingleFile;

/// <summary>
/// Tells from a weights file's tensor names and shapes what it holds, as diffusers' <c>from_single_file</c> does (the same
/// telltale keys), and refuses, saying what the file looks like and what to do, everything but a Stable Diffusion 1.x
/// checkpoint in the original layout.
/// </summary>
internal static class CheckpointDetection
{
    private const string TextToImageAdvice = "This SDK loads Stable Diffusion 1.x checkpoints (SD 1.4, SD 1.5 and their fine-tunes).";

    /// <summary>
    /// <see cref="CheckpointKind.StableDiffusion1"/> or <see cref="CheckpointKind.StableDiffusion1Inpainting"/> for a
    /// complete SD 1.x checkpoint of the file <paramref name="path"/>, whose tensors are <paramref name="keys"/> with the
    /// shapes <paramref name="shapeOf"/> gives.
    /// </summary>
    /// <exception cref="UnsupportedCheckpointException">The file holds something else (the message says what).</exception>
    /// <exception cref="ModelLoadException">The file lacks a component of the model, or its UNet takes neither 4 nor 9 channels.</exception>
    public static CheckpointKind Detect(string path, IReadOnlyCollection<string> keys, Func<string, IReadOnlyList<long>?> shapeOf)
    {
        string file = $"'{path}'";
        if (keys.FirstOrDefault(IsLoraKey) is { } lora)
        {
            throw new UnsupportedCheckpointException(CheckpointKind.Lora,
                $"{file} is a LoRA (low-rank weight updates such as '{lora}'), not a whole model. Load a Stable Diffusion 1.x model, then apply the LoRA to it.", path);
        }

        if (keys.FirstOrDefault(k => k.StartsWith("string_to_param", StringComparison.Ordinal) || k == "emb_params" || k is "clip_l" or "clip_g") is { } embedding)
        {
            throw new UnsupportedCheckpointException(CheckpointKind.TextualInversion,
                $"{file} is a textual inversion embedding ('{embedding}': new token vectors), not a whole model. Load a Stable Diffusion 1.x model, then the embedding into its tokenizer and text encoder.", path);
        }

        if (keys.Any(k => k.StartsWith("conditioner.embedders.", StringComparison.Ordinal)))
        {
            throw new UnsupportedCheckpointException(CheckpointKind.StableDiffusionXL,
                $"{file} looks like a Stable Diffusion XL checkpoint (its text encoders are under conditioner.embedders.*). {TextToImageAdvice}", path);
        }

        if (keys.FirstOrDefault(k => k.StartsWith("cond_stage_model.model.", StringComparison.Ordinal)
            || (k.StartsWith(LdmKeyLayout.UNetPrefix, StringComparison.Ordinal) && k.EndsWith(".attn2.to_k.weight", StringComparison.Ordinal) && shapeOf(k) is [.., 1024])) is { } sd2)
        {
            throw new UnsupportedCheckpointException(CheckpointKind.StableDiffusion2,
                $"{file} looks like a Stable Diffusion 2.x checkpoint ('{sd2}': an OpenCLIP text encoder, cross-attention 1024 wide, where SD 1.x has CLIP ViT-L/14 and 768). {TextToImageAdvice}", path);
        }

        if (keys.Any(k => k.StartsWith("control_model.", StringComparison.Ordinal) || k.StartsWith("controlnet_cond_embedding.", StringComparison.Ordinal)))
        {
            throw new UnsupportedCheckpointException(CheckpointKind.ControlNet,
                $"{file} is a ControlNet, not a whole model: it guides a Stable Diffusion model and is loaded beside one.", path);
        }

        if (!keys.Any(k => k.StartsWith(LdmKeyLayout.UNetPrefix, StringComparison.Ordinal)))
        {
            throw NotAModel(path, keys);
        }

        foreach ((string prefix, string component) in new[] { (LdmKeyLayout.VaePrefix, "VAE"), (LdmKeyLayout.TextEncoderPrefix, "CLIP text encoder") })
        {
            if (!keys.Any(k => k.StartsWith(prefix, StringComparison.Ordinal)))
            {
                throw new ModelLoadException(
                    $"{file} has a Stable Diffusion UNet but no {component} (no {prefix}* tensors); this SDK loads single files that hold the UNet, the VAE and the text encoder. " +
                    "Use the complete checkpoint, or the model's diffusers folder.", path);
            }
        }

        const string convIn = LdmKeyLayout.UNetPrefix + "input_blocks.0.0.weight";
        return shapeOf(convIn) switch
        {
            [_, 4, ..] => CheckpointKind.StableDiffusion1,
            [_, 9, ..] => CheckpointKind.StableDiffusion1Inpainting,
            [_, var channels, ..] => throw new UnsupportedCheckpointException(CheckpointKind.Unknown,
                $"{file} has a UNet that takes {channels} input channels ('{convIn}'); Stable Diffusion 1.x takes 4 (text-to-image) or 9 (inpainting), so this is another kind of model " +
                $"(instruct-pix2pix takes 8, depth-to-image 5). {TextToImageAdvice}", path),
            _ => throw new ModelLoadException($"{file} has UNet tensors but no '{convIn}' of a convolution's shape: the file is damaged or not a Stable Diffusion checkpoint.", path),
        };
    }

    private static bool IsLoraKey(string key) =>
        key.StartsWith("lora_unet_", StringComparison.Ordinal) || key.StartsWith("lora_te", StringComparison.Ordinal)
        || key.Contains("lora_down.", StringComparison.Ordinal) || key.Contains("lora_up.", StringComparison.Ordinal)
        || key.Contains(".lora_A.", StringComparison.Ordinal) || key.Contains(".lora_B.", StringComparison.Ordinal)
        || key.Contains(".lora.down.", StringComparison.Ordinal) || key.Contains(".lora.up.", StringComparison.Ordinal);

    // No original-layout UNet: a component alone, in either layout, or something else.
    private static UnsupportedCheckpointException NotAModel(string path, IReadOnlyCollection<string> keys)
    {
        string file = $"'{path}'";
        bool Has(string prefix) => keys.Any(k => k.StartsWith(prefix, StringComparison.Ordinal));
        if (Has("first_stage_model.") || Has("encoder.conv_in.") || Has("decoder.conv_in.") || Has("vae."))
        {
            return new UnsupportedCheckpointException(CheckpointKind.Vae,
                $"{file} holds a VAE alone, not a whole model (no UNet: no {LdmKeyLayout.UNetPrefix}* tensors). Load a Stable Diffusion 1.x model, and use this file as its VAE.", path);
        }

        if (keys.FirstOrDefault(k => k.StartsWith("down_blocks.", StringComparison.Ordinal) || k.StartsWith("time_embedding.", StringComparison.Ordinal)
            || k.StartsWith("text_model.", StringComparison.Ordinal) || k.StartsWith("vision_model.", StringComparison.Ordinal)) is { } diffusers)
        {
            return new UnsupportedCheckpointException(CheckpointKind.DiffusersComponent,
                $"{file} is one component of a diffusers folder (diffusers' names, such as '{diffusers}'), not a single-file checkpoint. " +
                "Load the whole folder, the one holding model_index.json, with StableDiffusionPipeline.FromPretrainedAsync.", path);
        }

        string examples = string.Join(", ", keys.Order(StringComparer.Ordinal).Take(3).Select(k => $"'{k}'"));
        return new UnsupportedCheckpointException(CheckpointKind.Unknown,
            $"{file} is not a Stable Diffusion checkpoint: none of its {keys.Count} tensors ({examples}{(keys.Count > 3 ? ", ..." : "")}) is under {LdmKeyLayout.UNetPrefix}, " +
            $"where the original layout keeps the UNet. {TextToImageAdvice}", path);
    }
}
