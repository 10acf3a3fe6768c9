using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using StableDiffusion.Pipelines;

namespace StableDiffusion.Core.Tests.Hardening.Drills;

/// <summary>A generation's output as raw bytes: two results are byte-identical when these are equal.</summary>
public static class GenerationBytes
{
    /// <summary>The image tensor, the 8-bit images and the final latents, concatenated.</summary>
    /// <param name="result">A generation result.</param>
    public static byte[] Of(GenerationResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        using var bytes = new MemoryStream();
        bytes.Write(MemoryMarshal.AsBytes<float>(Flatten(result.ImageTensor)));
        bytes.Write(MemoryMarshal.AsBytes<float>(Flatten(result.Latents)));
        foreach (var image in result.Images)
        {
            bytes.Write(image.Pixels.Span);
        }

        return bytes.ToArray();
    }

    /// <summary>The values of a tensor in row-major order.</summary>
    /// <param name="tensor">A tensor.</param>
    public static float[] Flatten(Tensor<float> tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        var values = new float[tensor.FlattenedLength];
        tensor.FlattenTo(values);
        return values;
    }
}
