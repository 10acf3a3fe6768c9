// IImageGenerator is marked experimental (MEAI001) in Microsoft.Extensions.AI.Abstractions 10.x.
#pragma warning disable MEAI001

using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using StableDiffusion.ImageGeneration;

namespace StableDiffusion.DependencyInjection;

/// <summary>
/// What <see cref="StableDiffusionServiceCollectionExtensions.AddStableDiffusion"/> and
/// <see cref="StableDiffusionServiceCollectionExtensions.AddKeyedStableDiffusion"/> return: one registered model, to which
/// more services can be added (<see cref="AddImageGenerator"/>).
/// </summary>
public sealed class StableDiffusionBuilder
{
    internal StableDiffusionBuilder(IServiceCollection services, string? serviceKey)
    {
        Services = services;
        ServiceKey = serviceKey;
    }

    /// <summary>The service collection.</summary>
    public IServiceCollection Services { get; }

    /// <summary>The model's service key; null for the unkeyed (default) model.</summary>
    public string? ServiceKey { get; }

    /// <summary>
    /// Registers a <see cref="StableDiffusionImageGenerator"/> over this model as Microsoft.Extensions.AI's
    /// <see cref="IImageGenerator"/> (keyed like the model), loading the model on its first request.
    /// </summary>
    /// <param name="options">The generator's settings, such as the image decoder for editing requests.</param>
    /// <returns>This builder.</returns>
    public StableDiffusionBuilder AddImageGenerator(StableDiffusionImageGeneratorOptions? options = null)
    {
        if (ServiceKey is null)
        {
            Services.TryAddSingleton<IImageGenerator>(provider => new StableDiffusionImageGenerator(provider.GetRequiredService<StableDiffusionPipelineProvider>(), options));
        }
        else
        {
            Services.TryAddKeyedSingleton<IImageGenerator>(ServiceKey, (provider, key) =>
                new StableDiffusionImageGenerator(provider.GetRequiredKeyedService<StableDiffusionPipelineProvider>(key), options));
        }

        return this;
    }
}
