using Microsoft.ML.OnnxRuntime;
using StableDiffusion.Models;

namespace StableDiffusion.Pipelines.Internal;

/// <summary>
/// A pipeline family's text-encoding step for one generation: prompts to the embeddings its UNet is conditioned on.
/// Stable Diffusion 1.x has one CLIP text encoder (<see cref="ClipTextEncoding"/>); a family with two (SDXL) is another
/// implementation.
/// </summary>
internal interface ITextEncoding
{
    /// <summary>Whether prompts are read with the web UI's attention syntax (prompt weighting), which also applies clip skip to negative prompts.</summary>
    bool Weighted { get; }

    /// <summary>Encodes <paramref name="texts"/> to embeddings [texts, sequence, hidden], row after row.</summary>
    /// <param name="texts">The prompts.</param>
    /// <param name="clipSkip">diffusers' <c>clip_skip</c>, or null for the last hidden state.</param>
    (float[] Values, int Batch, int Sequence, int Hidden) Encode(IReadOnlyList<string> texts, int? clipSkip);

    /// <summary>The error for a text encoder call that ONNX Runtime refused.</summary>
    ModelRunException Failure(OnnxRuntimeException error);
}
