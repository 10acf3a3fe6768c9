using System.Text.Json;
using Microsoft.Extensions.Logging;
using StableDiffusion.ExecutionProviders;
using StableDiffusion.Models;
using StableDiffusion.Pipelines;
using StableDiffusion.Safety;
using StableDiffusion.Schedulers;
using StableDiffusion.Tokenization;

namespace StableDiffusion.Loading;

/// <summary>
/// Loads the components of one model folder by their <c>model_index.json</c> names, whatever their layout: a graph from its
/// ONNX export or built from its diffusers folder (<see cref="ComponentSource"/>), the tokenizer, the scheduler, the safety
/// checker with its image pre-processing. <see cref="StableDiffusionComponents"/> asks it for what a
/// <see cref="PipelineDefinition"/> needs.
/// </summary>
/// <remarks>With a single-file checkpoint, the folder is its base model: the file gives the text encoder, the UNet and the VAE.</remarks>
internal sealed partial class ComponentRegistry(string modelPath, ModelIndex index, StableDiffusionPipelineOptions options, ModelConfiguration configuration, ILogger logger,
    SingleFile.SingleFileCheckpoint? singleFile = null)
{
    /// <summary>Where graph component <paramref name="component"/> comes from, or null when the folder lacks it.</summary>
    public ComponentSource? Find(string component) =>
        singleFile is not null && ComponentSource.SingleFileComponent.Holds(component)
            ? new ComponentSource.SingleFileComponent(singleFile, modelPath)
            : ComponentSource.InModel(modelPath, component, options.Variant);

    /// <summary>Loads graph component <paramref name="component"/> (not the safety checker), timed and logged.</summary>
    /// <exception cref="ModelLoadException">The folder has neither layout of it, or it cannot be loaded (naming the file).</exception>
    public OnnxModel LoadGraph(string component)
    {
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        SessionSettings settings = SettingsFor(component);
        OnnxModel model = Find(component) switch
        {
            ComponentSource.OnnxExport export => LoadExport(component, export.Graph, settings),
            ComponentSource.DiffusersFolder folder => (OnnxModel)folder.Build(component, ComputeType(component), new ComponentBuildSettings(settings, options.ConfigureSessionOptions)),
            ComponentSource.SingleFileComponent file => (OnnxModel)file.Build(component, ComputeType(component), new ComponentBuildSettings(settings, options.ConfigureSessionOptions)),
            _ => throw Missing(component),
        };
        LogComponentLoaded(logger, component, System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds, settings.ExecutionProvider.ToString());
        if (model.FusedAttentions > 0)
        {
            LogAttentionFused(logger, component, model.FusedAttentions);
        }

        return model;
    }

    /// <summary>Whether the folder has the safety checker in either layout.</summary>
    public bool HasSafetyChecker => Find(ModelComponents.SafetyChecker) is not null;

    /// <summary>Loads the safety checker and its image pre-processing.</summary>
    public SafetyChecker LoadSafetyChecker()
    {
        string preprocessorPath = Path.Combine(modelPath, ModelComponents.FeatureExtractor, "preprocessor_config.json");
        if (!File.Exists(preprocessorPath))
        {
            throw new ModelLoadException(
                $"The model '{modelPath}' has a safety checker but no {ModelComponents.FeatureExtractor}/preprocessor_config.json, which says how to prepare its input.", modelPath);
        }

        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        ClipImageProcessor processor = SafetyCheckers.LoadFeatureExtractor(preprocessorPath);
        SessionSettings settings = SettingsFor(ModelComponents.SafetyChecker);
        SafetyChecker checker = Find(ModelComponents.SafetyChecker) switch
        {
            ComponentSource.OnnxExport export => SafetyCheckers.Load(export.Graph, processor, settings, options.ConfigureSessionOptions),
            ComponentSource.DiffusersFolder folder => (SafetyChecker)folder.Build(
                ModelComponents.SafetyChecker, ComputeType(ModelComponents.SafetyChecker), new ComponentBuildSettings(settings, options.ConfigureSessionOptions, processor)),
            _ => throw Missing(ModelComponents.SafetyChecker),
        };
        LogComponentLoaded(logger, ModelComponents.SafetyChecker, System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds, settings.ExecutionProvider.ToString());
        return checker;
    }

    /// <summary>Loads the CLIP tokenizer of <c>tokenizer/</c>.</summary>
    public ClipTokenizer LoadTokenizer()
    {
        string folder = Path.Combine(modelPath, ModelComponents.Tokenizer);
        try
        {
            return ClipTokenizer.FromFolder(folder);
        }
        catch (TokenizerLoadException ex)
        {
            throw new ModelLoadException($"The tokenizer of '{modelPath}' cannot be loaded: {ex.Message}", ex.FilePath ?? folder, ex);
        }
    }

    /// <summary>Loads the scheduler of <c>scheduler/scheduler_config.json</c>, correcting what diffusers' pipelines correct.</summary>
    public IScheduler LoadScheduler()
    {
        string path = Path.Combine(modelPath, ModelComponents.Scheduler, "scheduler_config.json");
        if (!File.Exists(path))
        {
            throw new ModelLoadException($"The model has no scheduler configuration at '{path}'.", path);
        }

        SchedulerConfig config;
        try
        {
            config = SchedulerConfig.Load(path);
        }
        catch (SchedulerConfigException ex)
        {
            throw new ModelLoadException($"The scheduler configuration '{path}' is invalid: {ex.Message}", path, ex);
        }

        // diffusers' Stable Diffusion pipelines correct two known mistakes of old configurations when they load.
        if (config.TryGetValue("steps_offset", out var offset) && offset is not null && offset.GetValueKind() == JsonValueKind.Number && offset.GetValue<double>() != 1)
        {
            LogSchedulerFixUp(logger, path, "steps_offset", "1");
            config = config.With("steps_offset", 1);
        }

        if (config.TryGetValue("clip_sample", out var clip) && clip is not null && clip.GetValueKind() == JsonValueKind.True)
        {
            LogSchedulerFixUp(logger, path, "clip_sample", "false");
            config = config.With("clip_sample", false);
        }

        try
        {
            return SchedulerFactory.FromConfig(config);
        }
        catch (SchedulerConfigException ex)
        {
            throw new ModelLoadException($"The scheduler configuration '{path}' cannot be used: {ex.Message}", path, ex);
        }
    }

    /// <summary>A component's session settings, with the static shape's fixed dimensions added when one is set.</summary>
    public SessionSettings SettingsFor(string component)
    {
        SessionSettings settings = options.SessionFor(component);
        if (options.StaticShape is not { } shape)
        {
            return settings;
        }

        var dimensions = new Dictionary<string, long>(shape.DimensionsFor(component, configuration.VaeScaleFactor, ChannelsByClassName(index), options.EnableVaeSlicing));
        foreach (var (name, size) in settings.FreeDimensionOverrides)
        {
            dimensions[name] = size; // What the caller fixed explicitly wins.
        }

        return settings with { FreeDimensionOverrides = dimensions };
    }

    /// <summary>The UNet's input channels as the pipeline class implies: 9 for inpainting pipelines, else 4.</summary>
    public static int ChannelsByClassName(ModelIndex index) => index.ClassName.Contains("Inpaint", StringComparison.Ordinal) ? 9 : 4;

    /// <summary>The type a component built from diffusers weights computes in: the caller's precision, else its provider's default.</summary>
    public static TensorElementType ComputeTypeFor(SessionSettings settings, ComputePrecision? precision) =>
        (precision ?? ExecutionProviderFamily.Of(settings.ExecutionProvider).DefaultComputePrecision) == ComputePrecision.Float16
            ? TensorElementType.Float16
            : TensorElementType.Float;

    /// <summary>
    /// Loads graph component <paramref name="component"/> from a component folder of its own, in either layout (diffusers'
    /// <c>ModelMixin.from_pretrained</c> of one model), with the options' session settings, precision and variant.
    /// </summary>
    public static OnnxModel LoadFolder(string component, string folder, StableDiffusionPipelineOptions? options)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        options ??= new StableDiffusionPipelineOptions();
        folder = Path.GetFullPath(folder);
        if (!Directory.Exists(folder))
        {
            throw new ModelLoadException($"The {component} folder '{folder}' does not exist.", folder);
        }

        SessionSettings settings = options.SessionFor(component);
        return ComponentSource.InFolder(folder, options.Variant) switch
        {
            ComponentSource.OnnxExport export => LoadExport(component, export.Graph, settings, options.ConfigureSessionOptions),
            ComponentSource.DiffusersFolder diffusers => (OnnxModel)diffusers.Build(component, ComputeTypeFor(settings, options.ComputePrecision), new ComponentBuildSettings(settings, options.ConfigureSessionOptions)),
            _ => throw new ModelLoadException(
                $"'{folder}' is not a {component} folder: it has neither {ComponentSource.OnnxGraphName} (an ONNX export) nor {ComponentSource.ConfigName} with .safetensors weights (the diffusers layout).", folder),
        };
    }

    /// <summary>Loads an ONNX export of a graph component.</summary>
    public static OnnxModel LoadExport(string component, string graph, SessionSettings settings, Action<string, Microsoft.ML.OnnxRuntime.SessionOptions>? configure) => component switch
    {
        ModelComponents.TextEncoder => TextEncoderModel.Load(graph, settings, configure),
        ModelComponents.UNet => UNetModel.Load(graph, settings, configure),
        ModelComponents.VaeDecoder => VaeDecoderModel.Load(graph, settings, configure),
        ModelComponents.VaeEncoder => VaeEncoderModel.Load(graph, settings, configure),
        _ => throw new ArgumentOutOfRangeException(nameof(component), component, "Not a graph component of Stable Diffusion."),
    };

    private OnnxModel LoadExport(string component, string graph, SessionSettings settings) => LoadExport(component, graph, settings, options.ConfigureSessionOptions);

    private TensorElementType ComputeType(string component) => ComputeTypeFor(options.SessionFor(component), options.ComputePrecision);

    /// <summary>The error for a graph component the folder has in neither layout, naming what was looked for.</summary>
    public ModelLoadException Missing(string component)
    {
        string graph = Path.Combine(modelPath, component, ComponentSource.OnnxGraphName);
        string diffusers = ComponentSource.DiffusersFolderName(component);
        string folder = Path.Combine(modelPath, component);
        bool pyTorch = Directory.Exists(folder) && Directory.EnumerateFiles(folder).Any(f => f.EndsWith(".safetensors", StringComparison.Ordinal) || f.EndsWith(".bin", StringComparison.Ordinal));
        return new ModelLoadException(pyTorch
            ? $"'{modelPath}' holds PyTorch weights in {component}/ but neither an ONNX graph ({component}/model.onnx) nor the {component}/config.json a graph is built from. " +
              "Download the component's config.json with its .safetensors weights (the diffusers layout), or use an ONNX export of the model."
            : $"The model folder '{modelPath}' has no {component}/model.onnx (an ONNX export) and no {diffusers}/config.json with its .safetensors weights (the diffusers layout). " +
              $"A Stable Diffusion folder has text_encoder/, unet/ and vae_decoder/ (ONNX) or vae/ (diffusers), as its model_index.json lists them.",
            graph);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Path}: {Key} is outdated for Stable Diffusion and was changed to {Value}, as diffusers does.")]
    private static partial void LogSchedulerFixUp(ILogger logger, string path, string key, string value);

    [LoggerMessage(Level = LogLevel.Information, Message = "Component {Component} loaded in {Milliseconds:0} ms on {Provider}.")]
    private static partial void LogComponentLoaded(ILogger logger, string component, double milliseconds, string provider);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Component {Component}: {Count} attentions of its export rewritten to MultiHeadAttention (SessionSettings.FuseAttention).")]
    private static partial void LogAttentionFused(ILogger logger, string component, int count);
}
