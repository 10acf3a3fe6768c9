using System.Numerics.Tensors;
using System.Security.Cryptography;
using StableDiffusion.Loading;
using StableDiffusion.Randomness;
using StableDiffusion.Schedulers;

namespace StableDiffusion.Pipelines.Internal;

/// <summary>Step 5 of diffusers' pipelines: the generator and the initial latents.</summary>
internal static class InitialNoise
{
    /// <summary>The request's generator, or torch's CPU stream seeded with the request's seed (or a fresh random seed).</summary>
    public static (INoiseGenerator Generator, ulong? Seed) CreateGenerator(DiffusionRequest request)
    {
        if (request.Generator is { } generator)
        {
            return (generator, null);
        }

        ulong seed = request.Seed ?? BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(sizeof(ulong)));
        return (new TorchCpuGenerator(seed), seed);
    }

    /// <summary>
    /// Draws noise of <paramref name="length"/> values in one draw, as <c>randn_tensor(shape, generator, dtype)</c> does:
    /// in half precision when the UNet is fp16 (diffusers draws in the embeddings' dtype), else in single precision.
    /// </summary>
    public static float[] Draw(INoiseGenerator generator, int length, StableDiffusionComponents components)
    {
        var noise = new float[length];
        if (components.UNet.SampleType == TensorElementType.Float16)
        {
            var half = new Half[length];
            generator.FillStandardNormal(half);
            TensorPrimitives.ConvertToSingle(half, noise);
        }
        else
        {
            generator.FillStandardNormal(noise);
        }

        return noise;
    }

    /// <summary>The request's latents or fresh noise, times the scheduler's initial noise sigma.</summary>
    public static float[] Latents(Tensor<float>? given, INoiseGenerator generator, int length, IScheduler scheduler, StableDiffusionComponents components)
    {
        float[] latents;
        if (given is not null)
        {
            latents = new float[length];
            given.FlattenTo(latents);
        }
        else
        {
            latents = Draw(generator, length, components);
        }

        TensorPrimitives.Multiply(latents, scheduler.InitNoiseSigma, latents);
        return latents;
    }
}
