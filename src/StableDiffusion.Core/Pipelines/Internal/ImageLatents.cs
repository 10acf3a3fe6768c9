using System.Numerics.Tensors;
using Microsoft.Extensions.Logging;
using StableDiffusion.Loading;
using StableDiffusion.Models;
using StableDiffusion.Schedulers;

namespace StableDiffusion.Pipelines.Internal;

/// <summary>diffusers' <c>_encode_vae_image</c>: encode an image, sample its latent distribution with the call's generator, scale.</summary>
internal static partial class ImageLatents
{
    /// <summary>Latents [1, 4, h, w] of an image [1, 3, H, W] in [-1, 1]: <c>(mean + std * randn) * scaling_factor</c>.</summary>
    public static float[] Encode(StableDiffusionComponents components, float[] image, int height, int width, INoiseGenerator generator, GenerationScope scope, ILogger logger)
    {
        scope.Report(GenerationStage.EncodingImage);
        return scope.Stage(GenerationStage.EncodingImage, () =>
        {
            VaeEncoderModel encoder = components.VaeEncoder;
            LatentDistribution distribution = encoder.Encode(new ReadOnlyTensorSpan<float>(image, [1, 3, height, width]), scope.RunOptions);
            float[] latents = distribution.Mean.AsSpan().ToArray();
            if (distribution.Std is { } std)
            {
                // The posterior sample draws from the call's generator, in diffusers' order.
                float[] noise = InitialNoise.Draw(generator, latents.Length, components);
                TensorPrimitives.Multiply(std.AsSpan(), noise, noise);
                TensorPrimitives.Add(latents, noise, latents);
            }
            else
            {
                LogUnseededEncoder(logger, encoder.ModelPath);
            }

            TensorPrimitives.Multiply(latents, components.Configuration.ScalingFactor, latents);
            return latents;
        }, t => scope.ImageEncoding += t, error => ModelRunException.For(components.VaeEncoder, $"a {width}x{height} image", error));
    }

    /// <summary>
    /// Advances the generator exactly as <see cref="Encode"/> would for an image whose latents have <paramref name="latentLength"/>
    /// values, without running the encoder: the same draw when the encoder's distribution is sampled here, none otherwise.
    /// </summary>
    public static void SkipEncode(StableDiffusionComponents components, int latentLength, INoiseGenerator generator)
    {
        // Encode draws only when the encoder gives a standard deviation, which every kind but LatentSample does.
        if (components.VaeEncoder.OutputKind != VaeEncoderOutputKind.LatentSample)
        {
            _ = InitialNoise.Draw(generator, latentLength, components);
        }
    }

    /// <summary>One image's latents repeated for every row of the batch.</summary>
    public static float[] Repeat(float[] latents, int rows)
    {
        var result = new float[latents.Length * rows];
        for (int r = 0; r < rows; r++)
        {
            latents.CopyTo(result, r * latents.Length);
        }

        return result;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The VAE encoder '{ModelPath}' samples its latents inside the graph with an unseeded random op that could not be isolated: image-to-image and inpainting results vary from run to run whatever the seed. Use an export with latent_parameters (Optimum) for reproducible results.")]
    private static partial void LogUnseededEncoder(ILogger logger, string modelPath);
}
