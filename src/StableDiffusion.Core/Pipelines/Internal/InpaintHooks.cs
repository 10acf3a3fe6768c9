using System.Numerics.Tensors;
using StableDiffusion.Schedulers;

namespace StableDiffusion.Pipelines.Internal;

/// <summary>
/// An inpainting UNet (9 input channels) sees, per image, the scaled latents, the mask and the masked image's latents,
/// concatenated along the channels.
/// </summary>
internal sealed class InpaintUNetInput(float[] mask, float[] maskedImageLatents, int rows, int latentPlane) : DenoisingHooks
{
    public override int UNetChannels => 9;

    public override bool ComposesInput => true;

    public override void ComposeInput(ReadOnlySpan<float> scaledInput, Span<float> unetSample)
    {
        int batch = scaledInput.Length / (4 * latentPlane);
        for (int b = 0; b < batch; b++)
        {
            // Guidance doubles the batch; both halves get the same mask and masked image.
            int row = b % rows;
            Span<float> destination = unetSample.Slice(b * 9 * latentPlane, 9 * latentPlane);
            scaledInput.Slice(b * 4 * latentPlane, 4 * latentPlane).CopyTo(destination);
            mask.AsSpan(row * latentPlane, latentPlane).CopyTo(destination.Slice(4 * latentPlane));
            maskedImageLatents.AsSpan(row * 4 * latentPlane, 4 * latentPlane).CopyTo(destination.Slice(5 * latentPlane));
        }
    }
}

/// <summary>
/// With an ordinary UNet (4 channels), diffusers keeps the unmasked region by blending the image's latents, noised to the
/// next step's level, back in after every step: <c>latents = (1 - mask) * noised_image + mask * latents</c>.
/// </summary>
internal sealed class InpaintBlending(IScheduler scheduler, float[] imageLatents, float[] noise, float[] mask, int rows, int latentHeight, int latentWidth) : DenoisingHooks
{
    private readonly float[] _proper = new float[imageLatents.Length];
    private readonly nint[] _shape = [rows, 4, latentHeight, latentWidth];

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

        int plane = latentHeight * latentWidth;
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<float> m = mask.AsSpan(r * plane, plane);
            for (int c = 0; c < 4; c++)
            {
                int offset = ((r * 4) + c) * plane;
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
