using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using StableDiffusion.Pipelines;

namespace StableDiffusion.DependencyInjection;

/// <summary>Registers Stable Diffusion in a service collection.</summary>
public static class StableDiffusionServiceCollectionExtensions
{
    /// <summary>
    /// Registers a lazily loaded, shared <see cref="StableDiffusionPipeline"/> (resolve it directly, or resolve
    /// <see cref="StableDiffusionPipelineProvider"/> to load it without blocking) configured through the options pattern.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Sets the options; bind them from configuration with
    /// <c>services.Configure&lt;StableDiffusionOptions&gt;(configuration.GetSection("StableDiffusion"))</c> as well or instead.</param>
    /// <returns>The service collection.</returns>
    public static IServiceCollection AddStableDiffusion(this IServiceCollection services, Action<StableDiffusionOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<StableDiffusionOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.TryAddSingleton<StableDiffusionPipelineProvider>();
        services.TryAddSingleton(static provider => provider.GetRequiredService<StableDiffusionPipelineProvider>().GetPipeline());
        return services;
    }
}
