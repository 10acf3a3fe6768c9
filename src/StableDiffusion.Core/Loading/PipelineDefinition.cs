using StableDiffusion.Models;
using StableDiffusion.Pipelines;
using StableDiffusion.Pipelines.Internal;

namespace StableDiffusion.Loading;

/// <summary>
/// What a pipeline family needs from a model, by the component names of <c>model_index.json</c>: the graphs loaded at
/// once, those loaded on first use, and how its prompts become the UNet's conditioning. A family with other components
/// (SDXL's second text encoder) is another definition, not another loader.
/// </summary>
/// <param name="Family">The family's name in messages.</param>
/// <param name="Graphs">The graph components loaded with the model, in order.</param>
/// <param name="LazyGraphs">The graph components loaded when first used (the VAE encoder: text-to-image never needs it).</param>
/// <param name="TextEncoding">The family's text-encoding step for one generation over the loaded components (made with their text lock held).</param>
internal sealed record PipelineDefinition(
    string Family, IReadOnlyList<string> Graphs, IReadOnlyList<string> LazyGraphs, Func<StableDiffusionComponents, DiffusionRequest, GenerationScope, Microsoft.Extensions.Logging.ILogger, ITextEncoding> TextEncoding)
{
    /// <summary>Stable Diffusion 1.x: text-to-image, image-to-image and inpainting share it.</summary>
    public static PipelineDefinition StableDiffusion { get; } = new(
        "Stable Diffusion 1.x",
        [ModelComponents.TextEncoder, ModelComponents.UNet, ModelComponents.VaeDecoder],
        [ModelComponents.VaeEncoder],
        (components, request, scope, logger) => new ClipTextEncoding(components, request, scope, logger));
}
