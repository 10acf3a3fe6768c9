namespace StableDiffusion.Schedulers;

/// <summary>
/// A seeded source of standard-normal noise: the .NET counterpart of the <c>generator</c> argument of diffusers.
/// </summary>
/// <remarks>
/// <para>
/// Each call is one draw, like one <c>torch.randn(shape, generator=g)</c> call whose number of elements is the length
/// of <c>destination</c>: streams that depend on the draw size (torch's CPU generator fills blocks of 16) stay exact
/// when callers draw the same sizes in the same order as diffusers does. Successive calls continue the stream.
/// </para>
/// <para>
/// Implementations that reproduce diffusers' streams (torch's CPU and CUDA generators, numpy's <c>RandomState</c>) live in
/// the StableDiffusion.Core package. A generator is not thread-safe: use one per generation.
/// </para>
/// </remarks>
public interface INoiseGenerator
{
    /// <summary>Fills <paramref name="destination"/> with standard-normal samples drawn as single-precision values.</summary>
    /// <param name="destination">Where the samples go, in row-major order.</param>
    void FillStandardNormal(Span<float> destination);

    /// <summary>Fills <paramref name="destination"/> with standard-normal samples drawn as double-precision values.</summary>
    /// <param name="destination">Where the samples go, in row-major order.</param>
    void FillStandardNormal(Span<double> destination);

    /// <summary>Fills <paramref name="destination"/> with standard-normal samples drawn as half-precision values.</summary>
    /// <param name="destination">Where the samples go, in row-major order.</param>
    /// <remarks>torch draws half-precision noise from a different stream than single precision, which fp16 pipelines use.</remarks>
    void FillStandardNormal(Span<Half> destination);
}
