namespace StableDiffusion.Models;

/// <summary>
/// Supplies UNet inputs beyond the sample, timestep and prompt embeddings that the pipeline fills: what diffusers passes
/// to the UNet as extra keyword arguments, such as LCM's <c>timestep_cond</c>, SDXL's <c>text_embeds</c> and
/// <c>time_ids</c>, IP-Adapter image embeddings or ControlNet residuals. A UNet graph that takes such an input cannot run
/// without a contributor that writes it. Give contributors to a generation with <c>DiffusionRequest.UNetInputs</c>, or to
/// one call with <see cref="UNetModel.Predict(System.Numerics.Tensors.ReadOnlyTensorSpan{float}, float, System.Numerics.Tensors.ReadOnlyTensorSpan{float}, System.Numerics.Tensors.TensorSpan{float}, IReadOnlyList{IUNetInputContributor}, Microsoft.ML.OnnxRuntime.RunOptions?)"/>.
/// </summary>
/// <remarks>
/// The inputs are bound once per generation, in device memory where the provider binds it (and captured in a CUDA graph
/// with the rest), and keep their values between calls: a contributor writes what changes, when it changes. It is called
/// on the generation's thread, one call at a time per generation; one contributor given to generations that run at once
/// is called from each of them.
/// </remarks>
/// <example>
/// <code>
/// sealed class GuidanceEmbedding(float[] embedding) : IUNetInputContributor
/// {
///     public IReadOnlyCollection&lt;string&gt; InputNames { get; } = ["timestep_cond"];
///
///     public void Contribute(in UNetStep step, UNetInputs inputs)
///     {
///         if (step.Index == 0)
///         {
///             inputs["timestep_cond"].Write(embedding); // [batch, 256], the same for every step
///         }
///     }
/// }
/// </code>
/// </example>
public interface IUNetInputContributor
{
    /// <summary>The names of the UNet graph inputs it writes, such as <c>timestep_cond</c>.</summary>
    IReadOnlyCollection<string> InputNames { get; }

    /// <summary>
    /// The shape of one of its inputs for a call whose sample has shape <paramref name="sampleShape"/>, or null (the default)
    /// for the graph's: fixed dimensions as they are, a symbolic dimension named like one of the sample's or the prompt
    /// embeddings' of that size, and a first symbolic dimension the UNet batch. Needed only for other symbolic dimensions.
    /// </summary>
    /// <param name="inputName">One of <see cref="InputNames"/>.</param>
    /// <param name="sampleShape">The UNet sample's shape: [batch, channels, height, width].</param>
    long[]? ShapeOf(string inputName, ReadOnlySpan<long> sampleShape) => null;

    /// <summary>Writes its inputs for one UNet call, before the call: at least on the first step, as the inputs of a new
    /// generation may hold another generation's values.</summary>
    /// <param name="step">The step and its timestep.</param>
    /// <param name="inputs">Every input of the call, by name; the sample and prompt embeddings are readable, as the pipeline wrote them.</param>
    void Contribute(in UNetStep step, UNetInputs inputs);
}

/// <summary>One UNet call of a generation, as an <see cref="IUNetInputContributor"/> sees it.</summary>
/// <param name="Index">The step's index, from 0 (a call of <see cref="UNetModel.Predict(System.Numerics.Tensors.ReadOnlyTensorSpan{float}, float, System.Numerics.Tensors.ReadOnlyTensorSpan{float}, System.Numerics.Tensors.TensorSpan{float}, IReadOnlyList{IUNetInputContributor}, Microsoft.ML.OnnxRuntime.RunOptions?)"/> is step 0 of 1).</param>
/// <param name="Count">The number of UNet calls the generation makes.</param>
/// <param name="Timestep">The timestep of this call.</param>
/// <param name="Guided">Whether classifier-free guidance is on: the UNet batch is then the unconditional rows followed by the conditional rows, as in diffusers.</param>
public readonly record struct UNetStep(int Index, int Count, float Timestep, bool Guided);
