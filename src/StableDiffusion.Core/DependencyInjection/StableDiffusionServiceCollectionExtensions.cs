using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using StableDiffusion.Pipelines;

namespace StableDiffusion.DependencyInjection;

/// <summary>Registers Stable Diffusion in a service collection.</summary>
public static class StableDiffusionServiceCollectionExtensions
{
    /// <summary>
    /// Registers a lazily loaded, shared <see cref="StableDiffusionPipeline"/> (resolve it directly, or resolve
    /// <see cref="StableDiffusionPipelineProvider"/> to load it without blocking) configured through the options pattern,
    /// and the <see cref="StableDiffusionImg2ImgPipeline"/> and <see cref="StableDiffusionInpaintPipeline"/> sharing its sessions.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Sets the options; bind them from configuration with
    /// <c>services.Configure&lt;StableDiffusionOptions&gt;(configuration.GetSection("StableDiffusion"))</c> as well or instead.</param>
    /// <returns>A builder to add more services for this model, such as <see cref="StableDiffusionBuilder.AddImageGenerator"/>.</returns>
    public static StableDiffusionBuilder AddStableDiffusion(this IServiceCollection services, Action<StableDiffusionOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<StableDiffusionOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.TryAddSingleton<StableDiffusionPipelineProvider>();
        services.TryAddSingleton(static provider => provider.GetRequiredService<StableDiffusionPipelineProvider>().GetPipeline());
        services.TryAddSingleton(static provider => StableDiffusionImg2ImgPipeline.FromPipe(provider.GetRequiredService<StableDiffusionPipeline>()));
        services.TryAddSingleton(static provider => StableDiffusionInpaintPipeline.FromPipe(provider.GetRequiredService<StableDiffusionPipeline>()));
        return new StableDiffusionBuilder(services, null);
    }

    /// <summary>
    /// Registers one of several models under <paramref name="serviceKey"/>: the keyed counterparts of what
    /// <see cref="AddStableDiffusion"/> registers (<c>[FromKeyedServices("anime")] StableDiffusionPipeline pipe</c>), with
    /// the options named by the key (<c>services.Configure&lt;StableDiffusionOptions&gt;("anime", section)</c>).
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="serviceKey">The model's key, also the name of its options.</param>
    /// <param name="configure">Sets the options.</param>
    /// <returns>A builder to add more services for this model.</returns>
    public static StableDiffusionBuilder AddKeyedStableDiffusion(this IServiceCollection services, string serviceKey, Action<StableDiffusionOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrWhiteSpace(serviceKey);
        var options = services.AddOptions<StableDiffusionOptions>(serviceKey);
        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.TryAddKeyedSingleton(serviceKey, static (provider, key) => new StableDiffusionPipelineProvider(
            provider.GetRequiredService<IOptionsMonitor<StableDiffusionOptions>>().Get((string)key!), provider.GetService<ILoggerFactory>()));
        services.TryAddKeyedSingleton(serviceKey, static (provider, key) => provider.GetRequiredKeyedService<StableDiffusionPipelineProvider>(key).GetPipeline());
        services.TryAddKeyedSingleton(serviceKey, static (provider, key) => StableDiffusionImg2ImgPipeline.FromPipe(provider.GetRequiredKeyedService<StableDiffusionPipeline>(key)));
        services.TryAddKeyedSingleton(serviceKey, static (provider, key) => StableDiffusionInpaintPipeline.FromPipe(provider.GetRequiredKeyedService<StableDiffusionPipeline>(key)));
        return new StableDiffusionBuilder(services, serviceKey);
    }
}
