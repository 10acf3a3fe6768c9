using System.Numerics.Tensors;
using StableDiffusion.Pipelines.Internal;
using Xunit;

namespace StableDiffusion.Core.Tests.Pipelines;

[Trait("Area", "Pipeline")]
public sealed class ClassifierFreeGuidanceTests
{
    // Lengths below, at and across the chunk, one that leaves a short last chunk, and batch 8 of 512x512 latents.
    public static TheoryData<int> Lengths => [1, 7, ClassifierFreeGuidance.ChunkLength, ClassifierFreeGuidance.ChunkLength + 1,
        (3 * ClassifierFreeGuidance.ChunkLength) + 123, 8 * 4 * 64 * 64];

    [Theory]
    [MemberData(nameof(Lengths))]
    public void Combine_GivesThreeWholeArrayOperationsBitForBit(int length)
    {
        var random = new Random(length);
        float[] uncond = [.. Enumerable.Range(0, length).Select(_ => (random.NextSingle() * 8) - 4)];
        float[] text = [.. Enumerable.Range(0, length).Select(_ => (random.NextSingle() * 8) - 4)];
        var expected = new float[length];
        TensorPrimitives.Subtract(text, uncond, expected);
        TensorPrimitives.Multiply(expected, 7.5f, expected);
        TensorPrimitives.Add(uncond, expected, expected);
        var guided = new float[length];

        ClassifierFreeGuidance.Combine(uncond, text, 7.5f, guided);

        Assert.Equal(expected, guided);
        Assert.Equal(uncond[^1] + (7.5f * (text[^1] - uncond[^1])), guided[^1]);
    }
}
