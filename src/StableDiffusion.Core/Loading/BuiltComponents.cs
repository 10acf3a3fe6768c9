using Microsoft.ML.OnnxRuntime;
using StableDiffusion.ExecutionProviders;
using StableDiffusion.Models;
using StableDiffusion.Onnx;
using StableDiffusion.Onnx.Builders;
using StableDiffusion.Pipelines;
using StableDiffusion.Safety;

namespace StableDiffusion.Loading;

/// <summary>How a component built from diffusers weights gets its session.</summary>
/// <param name="Session">The component's session settings: provider, threads, the static shape's fixed dimensions.</param>
/// <param name="Configure">The caller's last hook on the session options (<see cref="StableDiffusionPipelineOptions.ConfigureSessionOptions"/>).</param>
/// <param name="FeatureExtractor">The safety checker's image pre-processing; needed for <c>safety_checker</c> only.</param>
internal sealed record ComponentBuildSettings(SessionSettings Session, Action<string, SessionOptions>? Configure = null, ClipImageProcessor? FeatureExtractor = null);

/// <summary>
/// The one place where a component of a model in the diffusers layout becomes a loaded model: its ONNX graph built from its
/// configuration over its weights (which stay in their files as external data), in the operators the execution provider
/// runs best, and its session created. Folders in the diffusers layout come here through the component registry; a
/// single-file checkpoint comes here with a <see cref="ParameterSource"/> that maps diffusers' keys to the file's.
/// </summary>
internal static class BuiltComponents
{
    /// <summary>The built VAE encoder's output holding the latent distribution's mean.</summary>
    public const string LatentMeanName = "latent_mean";

    /// <summary>The built VAE encoder's output holding the latent distribution's standard deviation.</summary>
    public const string LatentStdName = "latent_std";

    /// <summary>The graph components this builds, by their names in <see cref="ModelComponents"/>.</summary>
    public static IReadOnlyList<string> Components { get; } =
        [ModelComponents.TextEncoder, ModelComponents.UNet, ModelComponents.VaeDecoder, ModelComponents.VaeEncoder, ModelComponents.SafetyChecker];

    /// <summary>
    /// Builds and loads <paramref name="component"/>: <c>text_encoder</c> (a <see cref="TextEncoderModel"/>), <c>unet</c>
    /// (<see cref="UNetModel"/>), <c>vae_decoder</c> (<see cref="VaeDecoderModel"/>) and <c>vae_encoder</c>
    /// (<see cref="VaeEncoderModel"/>) from an <c>AutoencoderKL</c> configuration, or <c>safety_checker</c>
    /// (<see cref="SafetyChecker"/>, with <see cref="ComponentBuildSettings.FeatureExtractor"/>). The graph computes in
    /// <paramref name="weights"/>' compute type; the caller owns the result.
    /// </summary>
    /// <param name="component">The component's name in <see cref="ModelComponents"/>.</param>
    /// <param name="config">Its diffusers (or transformers) configuration.</param>
    /// <param name="weights">Its weights, under diffusers' key names.</param>
    /// <param name="settings">How its session is created.</param>
    /// <exception cref="ModelLoadException">The configuration has a value the builders cannot build (naming the field), a
    /// weight is missing or has another shape (naming the file), or ONNX Runtime refuses the graph.</exception>
    public static IDisposable Build(string component, ComponentConfig config, ParameterSource weights, ComponentBuildSettings settings)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(settings);
        ComputePrecision precision = weights.ComputeType == TensorElementType.Float16 ? ComputePrecision.Float16 : ComputePrecision.Float32;
        GraphFlavor flavor = ExecutionProviderFamily.Of(settings.Session.ExecutionProvider).BuiltGraphFlavor(component, precision, settings.Session.FusesAttention);
        var graph = new GraphBuilder(parameters: weights, flavor: flavor);
        string path = Path.GetDirectoryName(Path.GetFullPath(config.Path))!;
        BuiltGraph Built() => new(graph.ToBytes(), weights.Folder, path);

        switch (component)
        {
            case ModelComponents.TextEncoder:
                ClipTextModel.FromConfig(config).Build(graph);
                return TextEncoderModel.Load(Built(), settings.Session, settings.Configure);
            case ModelComponents.UNet:
                UNet2DConditionModel.FromConfig(config).BuildGraph(graph, weights.ComputeType);
                return UNetModel.Load(Built(), settings.Session, settings.Configure);
            case ModelComponents.VaeDecoder:
            {
                AutoencoderKL vae = AutoencoderKL.FromConfig(config);
                Value latents = graph.Input("latent_sample", weights.ComputeType, "batch", vae.LatentChannels, "height", "width");
                graph.Output(vae.Decode(graph, latents), "sample", "batch", vae.OutChannels, "image_height", "image_width");
                return VaeDecoderModel.Load(Built(), settings.Session, settings.Configure);
            }

            case ModelComponents.VaeEncoder:
            {
                AutoencoderKL vae = AutoencoderKL.FromConfig(config);
                Value images = graph.Input("sample", weights.ComputeType, "batch", vae.InChannels, "height", "width");
                (Value mean, Value std) = vae.Encode(graph, images);
                graph.Output(mean, LatentMeanName, "batch", vae.LatentChannels, "latent_height", "latent_width");
                graph.Output(std, LatentStdName, "batch", vae.LatentChannels, "latent_height", "latent_width");
                return VaeEncoderModel.Load(Built(), LatentMeanName, LatentStdName, settings.Session, settings.Configure);
            }

            case ModelComponents.SafetyChecker:
                ClipImageProcessor processor = settings.FeatureExtractor
                    ?? throw new ArgumentException("The safety checker needs its image pre-processing (feature_extractor).", nameof(settings));
                StableDiffusionSafetyChecker.FromConfig(config).Build(graph);
                return SafetyCheckers.Create(Built(), processor, settings.Session, settings.Configure);
            default:
                throw new ArgumentOutOfRangeException(nameof(component), component, $"Graphs are built for {string.Join(", ", Components)}.");
        }
    }
}
