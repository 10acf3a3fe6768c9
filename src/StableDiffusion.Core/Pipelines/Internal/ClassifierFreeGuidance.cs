using System.Numerics.Tensors;

namespace StableDiffusion.Pipelines.Internal;

/// <summary>Classifier-free guidance's combination of the UNet's two predictions.</summary>
internal static class ClassifierFreeGuidance
{
    /// <summary>Elements per chunk: 16 KiB of floats, which stay in the cache between a chunk's three operations.</summary>
    public const int ChunkLength = 4096;

    /// <summary>
    /// uncond + scale × (text − uncond), rounded after each operation as torch does, in chunks that go through all three
    /// operations while they are in the cache: a large batch is read from memory once instead of three times, with the same
    /// values bit for bit (ClassifierFreeGuidanceTests). At batch 8 (131,072 values) 24.5 µs against 60.5 µs for three
    /// whole-array passes (ClassifierFreeGuidanceBenchmarks, docs/performance.md).
    /// </summary>
    public static void Combine(ReadOnlySpan<float> uncond, ReadOnlySpan<float> text, float scale, Span<float> destination)
    {
        for (int start = 0; start < destination.Length; start += ChunkLength)
        {
            int length = Math.Min(ChunkLength, destination.Length - start);
            ReadOnlySpan<float> unconditional = uncond.Slice(start, length);
            Span<float> guided = destination.Slice(start, length);
            TensorPrimitives.Subtract(text.Slice(start, length), unconditional, guided);
            TensorPrimitives.Multiply(guided, scale, guided);
            TensorPrimitives.Add(unconditional, guided, guided);
        }
    }
}
