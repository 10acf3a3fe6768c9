using System.Numerics.Tensors;
using StableDiffusion.Models;
using StableDiffusion.Schedulers;

namespace StableDiffusion.Pipelines.Internal;

/// <summary>
/// An inpainting UNet (9 input channels for 4 latent ones) sees, per image, the scaled latents, the mask and the masked
/// image's latents, concatenated along the channels.
/// </summary>
/// <param name="mask">The mask at latent size, one plane per row.</param>
/// <param name="maskedImageLatents">The masked image's latents, of <paramref name="shape"/>.</param>
/// <param name="shape">The latents' shape.</param>
internal sealed class InpaintUNetInput(float[] mask, float[] maskedImageLatents, LatentShape shape) : DenoisingHooks
{
    public override bool ComposesInput => true;

    /// <summary>An inpainting UNet's input channels: latents, mask and masked image latents, twice the latent channels and one.</summary>
    public static int Channels(int latentChannels) => (2 * latentChannels) + 1;

    public override LatentShape UNetSample(LatentShape input) => input.WithChannels(Channels(input.Channels));

    public override void ComposeInput(ReadOnlySpan<float> scaledInput, Span<float> unetSample)
    {
        int plane = shape.PlaneLength, latentRow = shape.RowLength, sampleRow = Channels(shape.Channels) * plane;
        int batch = scaledInput.Length / latentRow;
        for (int b = 0; b < batch; b++)
        {
            // Guidance doubles the batch; both halves get the same mask and masked image.
            int row = b % shape.Batch;
            Span<float> destination = unetSample.Slice(b * sampleRow, sampleRow);
            scaledInput.Slice(b * latentRow, latentRow).CopyTo(destination);
            mask.AsSpan(row * plane, plane).CopyTo(destination.Slice(latentRow));
            maskedImageLatents.AsSpan(row * latentRow, latentRow).CopyTo(destination.Slice(latentRow + plane));
        }
    }
}

/// <summary>
/// With an ordinary UNet (4 channels), diffusers keeps the unmasked region by blending the image's latents, noised to the
/// next step's level, back in after every step: <c>latents = (1 - mask) * noised_image + mask * latents</c>.
/// </summary>
internal sealed class InpaintBlending(IScheduler scheduler, float[] imageLatents, float[] noise, float[] mask, LatentShape shape) : DenoisingHooks
{
    private readonly float[] _proper = new float[imageLatents.Length];
    private readonly nint[] _shape = shape.ToLengths();

    public override void AfterStep(int index, IReadOnlyList<float> timesteps, Span<float> latents)
    {
        if (index < timesteps.Count - 1)
        {
            scheduler.AddNoise(new ReadOnlyTensorSpan<float>(imageLatents, _shape), new ReadOnlyTensorSpan<float>(noise, _shape), timesteps[index + 1],
                new TensorSpan<float>(_proper, _shape));
        }
        else
        {
            imageLatents.CopyTo(_proper, 0);
        }

        int plane = shape.PlaneLength;
        for (int r = 0; r < shape.Batch; r++)
        {
            ReadOnlySpan<float> m = mask.AsSpan(r * plane, plane);
            for (int c = 0; c < shape.Channels; c++)
            {
                int offset = ((r * shape.Channels) + c) * plane;
                Span<float> current = latents.Slice(offset, plane);
                ReadOnlySpan<float> proper = _proper.AsSpan(offset, plane);
                for (int p = 0; p < plane; p++)
                {
                    current[p] = ((1f - m[p]) * proper[p]) + (m[p] * current[p]);
                }
            }
        }
    }
}
