using StableDiffusion.Core.Tests.Hardening.Drills;
using StableDiffusion.Pipelines;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.EndToEnd.Support;

/// <summary>Comparisons of generation results.</summary>
internal static class ResultAssert
{
    /// <summary>The images, 8-bit images and final latents are equal bit for bit.</summary>
    public static void Identical(GenerationResult expected, GenerationResult actual, string what)
    {
        Assert.Equal(expected.ImageTensor.Lengths.ToArray(), actual.ImageTensor.Lengths.ToArray());
        Assert.True(GenerationBytes.Of(expected).AsSpan().SequenceEqual(GenerationBytes.Of(actual)), $"{what}: the results are not byte-identical.");
    }

    /// <summary>The images agree within <paramref name="tolerance"/>.</summary>
    public static void Close(GenerationResult expected, GenerationResult actual, double tolerance, string what)
    {
        Assert.Equal(expected.ImageTensor.Lengths.ToArray(), actual.ImageTensor.Lengths.ToArray());
        ArrayAssert.Close(GenerationBytes.Flatten(expected.ImageTensor), GenerationBytes.Flatten(actual.ImageTensor), tolerance, what);
    }

    /// <summary>The images differ visibly (by more than one 8-bit level somewhere).</summary>
    public static void Different(GenerationResult a, GenerationResult b, string what)
    {
        (double max, _) = ArrayAssert.MaxAbsDifference(GenerationBytes.Flatten(a.ImageTensor), GenerationBytes.Flatten(b.ImageTensor));
        Assert.True(max > 1.0 / 255, $"{what}: the images should differ, but differ by at most {max:G3}.");
    }
}
