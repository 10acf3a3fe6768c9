using System.Numerics.Tensors;
using StableDiffusion.Loading;
using StableDiffusion.Models;

namespace StableDiffusion.Pipelines.Internal;

/// <summary>diffusers' <c>check_inputs</c> and more: every request is checked before anything is allocated or run.</summary>
internal static class RequestValidator
{
    /// <summary>The largest image side accepted, in pixels.</summary>
    public const int MaxImageSide = 8192;

    /// <summary>The largest number of image values (batch x 3 x height x width) one call may produce.</summary>
    public const long MaxImageValues = 1L << 30;

    /// <summary>The largest number of images (prompts x images per prompt) one call may produce.</summary>
    public const int MaxImagesPerCall = 4096;

    /// <summary>Checks what every pipeline shares and returns the number of prompts (the batch before images per prompt).</summary>
    public static int ValidateCommon(DiffusionRequest request, StableDiffusionComponents components)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.ClipSkip is int clipSkip && clipSkip < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(DiffusionRequest.ClipSkip), clipSkip,
                "ClipSkip counts the layers skipped as diffusers' clip_skip does: 1 or more, or null for none (a web UI's \"Clip skip: 1\" is null, its \"Clip skip: 2\" is 1).");
        }

        if (request.PreviewInterval < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(request), request.PreviewInterval,
                $"{nameof(DiffusionRequest.PreviewInterval)} must be 1 or more (a preview every that many steps), not {request.PreviewInterval}.");
        }

        int batch;
        if (request.PromptEmbeds is { } embeds)
        {
            if (request.Prompts.Count > 0)
            {
                throw new ArgumentException("Pass either Prompts or PromptEmbeds, not both.", nameof(request));
            }

            RequireEmbeddings(embeds, nameof(DiffusionRequest.PromptEmbeds), components);
            batch = (int)embeds.Lengths[0];
            if (request.NegativePromptEmbeds is { } negative)
            {
                RequireEmbeddings(negative, nameof(DiffusionRequest.NegativePromptEmbeds), components);
                if (!negative.Lengths.SequenceEqual(embeds.Lengths))
                {
                    throw new ArgumentException(
                        $"NegativePromptEmbeds has shape [{Shape(negative)}] but PromptEmbeds has [{Shape(embeds)}]; they must be equal.", nameof(request));
                }
            }
        }
        else
        {
            if (request.Prompts.Count == 0)
            {
                throw new ArgumentException("The request has no prompt: give at least one prompt, or PromptEmbeds.", nameof(request));
            }

            for (int i = 0; i < request.Prompts.Count; i++)
            {
                if (request.Prompts[i] is null)
                {
                    throw new ArgumentException($"Prompts[{i}] is null.", nameof(request));
                }
            }

            if (request.NegativePromptEmbeds is not null)
            {
                throw new ArgumentException("NegativePromptEmbeds needs PromptEmbeds: pass both embeddings, or prompts and negative prompts.", nameof(request));
            }

            batch = request.Prompts.Count;
        }

        if (request.NegativePrompt is not null && request.NegativePrompts is not null)
        {
            throw new ArgumentException("Pass either NegativePrompt (one for all prompts) or NegativePrompts (one per prompt), not both.", nameof(request));
        }

        if ((request.NegativePrompt is not null || request.NegativePrompts is not null) && request.NegativePromptEmbeds is not null)
        {
            throw new ArgumentException("Pass either negative prompts or NegativePromptEmbeds, not both.", nameof(request));
        }

        if (request.NegativePrompts is { } negatives)
        {
            if (negatives.Count != batch)
            {
                throw new ArgumentException($"NegativePrompts has {negatives.Count} entries but there are {batch} prompts; give one negative prompt per prompt.", nameof(request));
            }

            if (negatives.Any(n => n is null))
            {
                throw new ArgumentException("NegativePrompts contains null.", nameof(request));
            }
        }

        if (request.NumInferenceSteps < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(request), request.NumInferenceSteps, "NumInferenceSteps must be at least 1.");
        }

        RequireFinite(request.GuidanceScale, nameof(DiffusionRequest.GuidanceScale));
        RequireFinite(request.GuidanceRescale, nameof(DiffusionRequest.GuidanceRescale));
        if (request.GuidanceRescale < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(request), request.GuidanceRescale, "GuidanceRescale must be 0 (off) or positive; diffusers suggests 0.7.");
        }

        RequireFinite(request.Eta, nameof(DiffusionRequest.Eta));
        if (request.Eta < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(request), request.Eta, "Eta must be between 0 (DDIM) and 1 (DDPM-like).");
        }

        if (request.NumImagesPerPrompt < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(request), request.NumImagesPerPrompt, "NumImagesPerPrompt must be at least 1.");
        }

        // Checked here, in 64 bits, so that the image count (prompts x images per prompt) cannot overflow where it is used.
        if ((long)batch * request.NumImagesPerPrompt > MaxImagesPerCall)
        {
            throw new ArgumentOutOfRangeException(nameof(request), request.NumImagesPerPrompt,
                $"NumImagesPerPrompt {request.NumImagesPerPrompt} x {batch} prompt(s) is {(long)batch * request.NumImagesPerPrompt} images; one call makes at most {MaxImagesPerCall}. Make several calls.");
        }

        if (request.Seed is not null && request.Generator is not null)
        {
            throw new ArgumentException("Pass either Seed or Generator, not both.", nameof(request));
        }

        components.UNet.Inputs.RequireContributors(request.UNetInputs, nameof(DiffusionRequest.UNetInputs));
        return batch;
    }

    /// <summary>Checks the image size (multiples of the VAE scale factor, within limits) before anything is allocated.</summary>
    public static void ValidateSize(int height, int width, int rows, int scaleFactor)
    {
        foreach ((string name, int value) in new[] { ("Height", height), ("Width", width) })
        {
            if (value < scaleFactor || value > MaxImageSide)
            {
                throw new ArgumentOutOfRangeException(name, value, $"{name} must be between {scaleFactor} and {MaxImageSide} pixels.");
            }

            if (value % scaleFactor != 0)
            {
                throw new ArgumentException($"{name} must be a multiple of {scaleFactor}, but is {value}; try {value / scaleFactor * scaleFactor} or {(value / scaleFactor + 1) * scaleFactor}.", name);
            }
        }

        if ((long)rows * 3 * height * width > MaxImageValues)
        {
            throw new ArgumentException(
                $"{rows} images of {width}x{height} are too large for one call ({(long)rows * 3 * height * width} values; the limit is {MaxImageValues}). Generate fewer or smaller images per call.");
        }
    }

    /// <summary>Checks a request against the shape the pipeline was specialised for, if any.</summary>
    public static void ValidateStaticShape(StableDiffusionComponents components, int height, int width, int rows, bool guided)
    {
        if (components.Options.StaticShape is not { } shape)
        {
            return;
        }

        if (shape.Height != height || shape.Width != width || shape.ImagesPerCall != rows || shape.ClassifierFreeGuidance != guided)
        {
            throw new ArgumentException(
                $"The pipeline was loaded with StaticShape {shape.Width}x{shape.Height}, {shape.ImagesPerCall} image(s) per call, guidance {(shape.ClassifierFreeGuidance ? "on" : "off")}; " +
                $"this request needs {width}x{height}, {rows} image(s), guidance {(guided ? "on" : "off")}. Match the shape, or load a pipeline without StaticShape (or with this one).");
        }
    }

    /// <summary>Checks user latents: shape [rows, latent channels, height / 8, width / 8] and finite values.</summary>
    public static void ValidateLatents(Tensor<float> latents, LatentShape shape)
    {
        if (!latents.Lengths.SequenceEqual(shape.ToLengths()))
        {
            throw new ArgumentException(
                $"Latents has shape [{Shape(latents)}] but this request needs {shape} (images, channels, height / 8, width / 8).", "Latents");
        }

        RequireFinite(latents, "Latents");
    }

    private static void RequireEmbeddings(Tensor<float> embeds, string name, StableDiffusionComponents components)
    {
        if (embeds.Rank != 3 || embeds.Lengths[0] < 1 || embeds.Lengths[1] < 1 || embeds.Lengths[2] < 1)
        {
            throw new ArgumentException($"{name} must have shape [batch, sequence, hidden], but has [{Shape(embeds)}].", name);
        }

        int? hidden = components.UNet.CrossAttentionDim ?? components.TextEncoder.HiddenSize;
        if (hidden is int h && embeds.Lengths[2] != h)
        {
            throw new ArgumentException($"{name} has hidden size {embeds.Lengths[2]} but this model's UNet expects {h}.", name);
        }

        RequireFinite(embeds, name);
    }

    private static void RequireFinite(float value, string name)
    {
        if (!float.IsFinite(value))
        {
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be a finite number.");
        }
    }

    private static void RequireFinite(Tensor<float> tensor, string name)
    {
        var values = new float[tensor.FlattenedLength];
        tensor.FlattenTo(values);
        if (!TensorPrimitives.IsFiniteAll<float>(values))
        {
            int bad = Array.FindIndex(values, v => !float.IsFinite(v));
            throw new ArgumentException($"{name} contains a non-finite value ({values[bad]}) at flat index {bad}.", name);
        }
    }

    private static string Shape(Tensor<float> tensor) => string.Join(", ", tensor.Lengths.ToArray());
}
