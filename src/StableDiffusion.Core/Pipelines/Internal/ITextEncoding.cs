using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;
using StableDiffusion.Models;

namespace StableDiffusion.Pipelines.Internal;

/// <summary>
/// A pipeline family's text-encoding step: prompts to the embeddings its UNet is conditioned on. Stable Diffusion 1.x
/// has one CLIP text encoder (<see cref="ClipTextEncoding"/>); a family with two (SDXL) is another implementation.
/// </summary>
internal interface ITextEncoding
{
    /// <summary>Encodes <paramref name="texts"/> to embeddings [texts, sequence, hidden], row after row.</summary>
    (float[] Values, int Batch, int Sequence, int Hidden) Encode(IReadOnlyList<string> texts, GenerationScope scope, ILogger logger);

    /// <summary>The error for a text encoder call that ONNX Runtime refused.</summary>
    ModelRunException Failure(OnnxRuntimeException error);
}
