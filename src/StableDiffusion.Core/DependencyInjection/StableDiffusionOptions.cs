using StableDiffusion.Pipelines;

namespace StableDiffusion.DependencyInjection;

/// <summary>
/// Options for the pipeline registered by <see cref="StableDiffusionServiceCollectionExtensions.AddStableDiffusion(Microsoft.Extensions.DependencyInjection.IServiceCollection, Action{StableDiffusionOptions}?)"/>,
/// bindable from configuration, e.g. a <c>"StableDiffusion"</c> section: <c>{ "Model": "path/or/org-name", "Pipeline": { "Session": { "ExecutionProvider": { "Name": "CUDA" } } } }</c>.
/// </summary>
public sealed class StableDiffusionOptions
{
    /// <summary>A model folder in the diffusers layout or its ONNX layout, or a Hugging Face Hub repository id (default: Stable Diffusion v1.5's ONNX export).</summary>
    public string Model { get; set; } = Pipelines.DiffusionPipeline.DefaultModelId;

    /// <summary>How the pipeline loads: execution providers, sessions, safety checker. The logger factory comes from the container.</summary>
    public StableDiffusionPipelineOptions Pipeline { get; set; } = new();
}
