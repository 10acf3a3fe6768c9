using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;
using StableDiffusion.ExecutionProviders;
using StableDiffusion.Models;
using StableDiffusion.Pipelines;
using StableDiffusion.Safety;
using StableDiffusion.Schedulers;
using StableDiffusion.Tokenization;

namespace StableDiffusion.Loading;

/// <summary>
/// The loaded parts of a Stable Diffusion model folder, shared by the pipelines made from it: one ONNX Runtime session
/// per graph, the tokenizer and the scheduler configuration. Reference-counted: the sessions are released when the last
/// pipeline using them is disposed.
/// </summary>
internal sealed partial class StableDiffusionComponents : IDisposable
{
    private readonly StableDiffusionPipelineOptions _options;
    private readonly Lazy<VaeEncoderModel> _vaeEncoder;
    private int _references = 1;

    private StableDiffusionComponents(string modelPath, ModelIndex index, StableDiffusionPipelineOptions options, TextEncoderModel textEncoder,
        UNetModel unet, VaeDecoderModel vaeDecoder, SafetyChecker? safetyChecker, ClipTokenizer tokenizer, IScheduler scheduler, ModelConfiguration configuration)
    {
        ModelPath = modelPath;
        Index = index;
        _options = options;
        TextEncoder = textEncoder;
        UNet = unet;
        VaeDecoder = vaeDecoder;
        SafetyChecker = safetyChecker;
        if (safetyChecker is not null)
        {
            SafetyThread = DeviceThread.For(options.SessionFor(ModelComponents.SafetyChecker).ExecutionProvider, ModelComponents.SafetyChecker);
        }

        Tokenizer = tokenizer;
        _baseTokenizer = tokenizer;
        Scheduler = scheduler;
        Configuration = configuration;
        string encoderPath = Path.Combine(modelPath, ModelComponents.VaeEncoder, "model.onnx");
        SessionSettings encoderSettings = SettingsFor(ModelComponents.VaeEncoder, options, configuration, index);
        _vaeEncoder = new Lazy<VaeEncoderModel>(
            () => VaeEncoderModel.Load(encoderPath, encoderSettings, options.ConfigureSessionOptions),
            LazyThreadSafetyMode.ExecutionAndPublication);
    }

    public string ModelPath { get; }

    /// <summary>What the user loaded: the Hub repository id, or the folder's full path; recorded in each image's parameters.</summary>
    public string ModelName { get; private init; } = string.Empty;

    public StableDiffusionPipelineOptions Options => _options;

    public ModelIndex Index { get; }

    /// <summary>The text encoder; replaced when clip skip, textual inversion or a LoRA needs an edited graph (see the TextConditioning part).</summary>
    public TextEncoderModel TextEncoder { get; private set; }

    public UNetModel UNet { get; private set; }

    public VaeDecoderModel VaeDecoder { get; }

    public SafetyChecker? SafetyChecker { get; }

    /// <summary>The thread that makes the safety checker's calls when its provider keeps state per thread (CUDA); null otherwise.</summary>
    public DeviceThread? SafetyThread { get; }

    /// <summary>The tokenizer, with the tokens of the loaded textual inversions.</summary>
    public ClipTokenizer Tokenizer { get; private set; }

    public IScheduler Scheduler { get; }

    public ModelConfiguration Configuration { get; }

    /// <summary>The UNet's input channels: the graph's when fixed, else 9 for an inpainting pipeline's model and 4 otherwise.</summary>
    public int UNetInChannels => UNet.InChannels ?? ChannelsByClassName(Index);

    /// <summary>
    /// The channels of the latents (4 for SD 1.x): what the UNet predicts, else what the VAE decoder takes, when the graphs
    /// fix them; SD 1.x's 4 when both leave them open.
    /// </summary>
    public int LatentChannels => UNet.OutChannels ?? VaeDecoder.LatentChannels ?? 4;

    /// <summary>Throws unless the UNet takes plain latents (text-to-image and image-to-image).</summary>
    public void RequireLatentUNet(string pipeline)
    {
        if (UNetInChannels != LatentChannels)
        {
            throw new InvalidOperationException(
                $"The model '{ModelPath}' has an inpainting UNet ({UNetInChannels} input channels: latents, mask and masked image), which {pipeline} cannot drive. " +
                "Use StableDiffusionInpaintPipeline with an image and a mask, or a text-to-image model.");
        }
    }

    /// <summary>Whether the folder has a VAE encoder (image-to-image and inpainting need it).</summary>
    public bool HasVaeEncoder => File.Exists(Path.Combine(ModelPath, ModelComponents.VaeEncoder, "model.onnx"));

    /// <summary>The VAE encoder, loaded on first use: text-to-image never needs it.</summary>
    public VaeEncoderModel VaeEncoder => HasVaeEncoder
        ? _vaeEncoder.Value
        : throw new ModelLoadException($"The model '{ModelPath}' has no {ModelComponents.VaeEncoder}/model.onnx, which image-to-image and inpainting need.", ModelPath);

    /// <summary>Takes a reference (a pipeline, or a generation in flight); fails once the sessions are released.</summary>
    public StableDiffusionComponents AddReference()
    {
        int current;
        do
        {
            current = Volatile.Read(ref _references);
            ObjectDisposedException.ThrowIf(current == 0, this);
        }
        while (Interlocked.CompareExchange(ref _references, current + 1, current) != current);

        return this;
    }

    public void Dispose()
    {
        if (Interlocked.Decrement(ref _references) != 0)
        {
            return;
        }

        TextEncoder.Dispose();
        UNet.Dispose();
        VaeDecoder.Dispose();
        SafetyThread?.Dispose();
        SafetyChecker?.Dispose();
        if (_vaeEncoder.IsValueCreated)
        {
            _vaeEncoder.Value.Dispose();
        }
    }

    /// <summary>Loads a model folder in the diffusers ONNX layout.</summary>
    public static StableDiffusionComponents Load(string modelPath, StableDiffusionPipelineOptions options, ILogger logger, CancellationToken cancellationToken,
        string? modelName = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelPath);
        ArgumentNullException.ThrowIfNull(options);
        modelPath = Path.GetFullPath(modelPath);
        if (!Directory.Exists(modelPath))
        {
            throw new ModelLoadException($"The model folder '{modelPath}' does not exist. Pass a folder in the diffusers ONNX layout, or a Hugging Face repository id such as 'onnx-community/stable-diffusion-v1-5-ONNX'.", modelPath);
        }

        ModelIndex index = ModelIndex.Load(Path.Combine(modelPath, ModelIndex.FileName));
        RequireOnnxLayout(modelPath);
        string Graph(string component) => Path.Combine(modelPath, component, "model.onnx");

        bool hasChecker = File.Exists(Graph(ModelComponents.SafetyChecker));
        bool useChecker = options.EnableSafetyChecker && hasChecker;
        if (!options.EnableSafetyChecker)
        {
            LogSafetyCheckerDisabled(logger, modelPath);
        }
        else if (!hasChecker)
        {
            if (index.RequiresSafetyChecker)
            {
                throw new ModelLoadException(
                    $"The model '{modelPath}' requires the safety checker (model_index.json: requires_safety_checker is true) but has no " +
                    $"{ModelComponents.SafetyChecker}/model.onnx. Use a model folder that includes it, or load without it by setting " +
                    $"{nameof(StableDiffusionPipelineOptions)}.{nameof(StableDiffusionPipelineOptions.EnableSafetyChecker)} = false (you then take responsibility for the outputs).",
                    modelPath);
            }

            LogNoSafetyChecker(logger, modelPath);
        }

        string tokenizerFolder = Path.Combine(modelPath, ModelComponents.Tokenizer);
        string schedulerConfigPath = Path.Combine(modelPath, ModelComponents.Scheduler, "scheduler_config.json");
        string preprocessorPath = Path.Combine(modelPath, ModelComponents.FeatureExtractor, "preprocessor_config.json");
        if (useChecker && !File.Exists(preprocessorPath))
        {
            throw new ModelLoadException(
                $"The model '{modelPath}' has a safety checker but no {ModelComponents.FeatureExtractor}/preprocessor_config.json, which says how to prepare its input.", modelPath);
        }

        ClipTokenizer tokenizer;
        try
        {
            tokenizer = ClipTokenizer.FromFolder(tokenizerFolder);
        }
        catch (TokenizerLoadException ex)
        {
            throw new ModelLoadException($"The tokenizer of '{modelPath}' cannot be loaded: {ex.Message}", ex.FilePath ?? tokenizerFolder, ex);
        }

        IScheduler scheduler = LoadScheduler(schedulerConfigPath, logger);
        ModelConfiguration configuration = ModelConfiguration.Load(modelPath);
        SessionSettings Settings(string component) => SettingsFor(component, options, configuration, index);

        var loaded = new List<IDisposable>();
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            var textEncoder = Track(ModelComponents.TextEncoder, () => TextEncoderModel.Load(Graph(ModelComponents.TextEncoder), Settings(ModelComponents.TextEncoder), options.ConfigureSessionOptions));
            cancellationToken.ThrowIfCancellationRequested();
            var unet = Track(ModelComponents.UNet, () => UNetModel.Load(Graph(ModelComponents.UNet), Settings(ModelComponents.UNet), options.ConfigureSessionOptions));
            cancellationToken.ThrowIfCancellationRequested();
            var vaeDecoder = Track(ModelComponents.VaeDecoder, () => VaeDecoderModel.Load(Graph(ModelComponents.VaeDecoder), Settings(ModelComponents.VaeDecoder), options.ConfigureSessionOptions));
            cancellationToken.ThrowIfCancellationRequested();
            SafetyChecker? checker = useChecker
                ? Track(ModelComponents.SafetyChecker, () => LoadSafetyChecker(Graph(ModelComponents.SafetyChecker), preprocessorPath, options))
                : null;
            CheckCompatibility(modelPath, textEncoder, unet);
            LogLoaded(logger, modelPath, index.ClassName, options.Session.ExecutionProvider.ToString(), scheduler.Config.ClassName, checker is not null);
            return new StableDiffusionComponents(modelPath, index, options, textEncoder, unet, vaeDecoder, checker, tokenizer, scheduler, configuration)
            {
                ModelName = modelName ?? modelPath,
            };
        }
        catch
        {
            foreach (IDisposable d in loaded)
            {
                d.Dispose();
            }

            throw;
        }

        // Loads one component, timed: session creation is most of a model's load time, and the log says where it went.
        T Track<T>(string component, Func<T> load) where T : IDisposable
        {
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            T disposable = load();
            loaded.Add(disposable);
            LogComponentLoaded(logger, component, System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds, options.SessionFor(component).ExecutionProvider.ToString());
            return disposable;
        }
    }

    /// <summary>A component's session settings, with the static shape's fixed dimensions added when one is set.</summary>
    private static SessionSettings SettingsFor(string component, StableDiffusionPipelineOptions options, ModelConfiguration configuration, ModelIndex index)
    {
        SessionSettings settings = options.SessionFor(component);
        if (options.StaticShape is not { } shape)
        {
            return settings;
        }

        var dimensions = new Dictionary<string, long>(shape.DimensionsFor(component, configuration.VaeScaleFactor, ChannelsByClassName(index)));
        foreach (var (name, size) in settings.FreeDimensionOverrides)
        {
            dimensions[name] = size; // What the caller fixed explicitly wins.
        }

        return settings with { FreeDimensionOverrides = dimensions };
    }

    /// <summary>The UNet's input channels as the pipeline class implies: 9 for inpainting pipelines, else 4.</summary>
    private static int ChannelsByClassName(ModelIndex index) => index.ClassName.Contains("Inpaint", StringComparison.Ordinal) ? 9 : 4;

    private static void RequireOnnxLayout(string modelPath)
    {
        foreach (string component in new[] { ModelComponents.TextEncoder, ModelComponents.UNet, ModelComponents.VaeDecoder })
        {
            string graph = Path.Combine(modelPath, component, "model.onnx");
            if (File.Exists(graph))
            {
                continue;
            }

            string folder = Path.Combine(modelPath, component);
            bool pyTorch = Directory.Exists(folder) && Directory.EnumerateFiles(folder).Any(f => f.EndsWith(".safetensors", StringComparison.Ordinal) || f.EndsWith(".bin", StringComparison.Ordinal));
            bool vaeOnly = component == ModelComponents.VaeDecoder && Directory.Exists(Path.Combine(modelPath, "vae"));
            throw new ModelLoadException(pyTorch || vaeOnly
                ? $"'{modelPath}' holds PyTorch weights, not ONNX graphs ({component}/model.onnx is missing). Use an ONNX export of the model, such as 'onnx-community/stable-diffusion-v1-5-ONNX', or export it with diffusers' or Optimum's ONNX exporter."
                : $"The model folder '{modelPath}' has no {component}/model.onnx. A diffusers ONNX Stable Diffusion folder has text_encoder/, unet/, vae_decoder/ (and usually vae_encoder/, safety_checker/), each with a model.onnx.",
                graph);
        }
    }

    private static IScheduler LoadScheduler(string path, ILogger logger)
    {
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

    private static SafetyChecker LoadSafetyChecker(string graph, string preprocessorPath, StableDiffusionPipelineOptions options)
    {
        SessionSettings settings = options.SessionFor(ModelComponents.SafetyChecker);
        ClipImageProcessor processor;
        try
        {
            processor = ClipImageProcessor.Load(preprocessorPath);
        }
        catch (PreprocessorConfigException ex)
        {
            throw new ModelLoadException($"The safety checker's image pre-processing configuration cannot be used: {ex.Message}", preprocessorPath, ex);
        }

        using SessionOptions sessionOptions = SessionOptionsFactory.Create(settings, ModelComponents.SafetyChecker);
        options.ConfigureSessionOptions?.Invoke(ModelComponents.SafetyChecker, sessionOptions);
        InferenceSession session;
        try
        {
            session = new InferenceSession(graph, sessionOptions);
        }
        catch (OnnxRuntimeException ex)
        {
            throw new ModelLoadException($"ONNX Runtime could not load the safety checker '{graph}': {ex.Message.Trim()} The file may be truncated or corrupt; download it again.", graph, ex);
        }

        try
        {
            return new SafetyChecker(session, processor, ownsSession: true, modelPath: graph);
        }
        catch (SafetyCheckerModelException ex)
        {
            session.Dispose();
            throw new ModelLoadException($"The safety checker '{graph}' cannot be used: {ex.Message}", graph, ex);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    private static void CheckCompatibility(string modelPath, TextEncoderModel textEncoder, UNetModel unet)
    {
        if (textEncoder.HiddenSize is int hidden && unet.CrossAttentionDim is int cross && hidden != cross)
        {
            throw new ModelLoadException(
                $"The text encoder of '{modelPath}' produces {hidden}-wide embeddings but its UNet expects {cross}: the components come from different models.", modelPath);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The safety checker is disabled for {ModelPath}: generated images are not checked for NSFW content. Keep it on for any public-facing use.")]
    private static partial void LogSafetyCheckerDisabled(ILogger logger, string modelPath);

    [LoggerMessage(Level = LogLevel.Information, Message = "{ModelPath} has no safety checker and does not require one; images are not checked.")]
    private static partial void LogNoSafetyChecker(ILogger logger, string modelPath);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Path}: {Key} is outdated for Stable Diffusion and was changed to {Value}, as diffusers does.")]
    private static partial void LogSchedulerFixUp(ILogger logger, string path, string key, string value);

    [LoggerMessage(Level = LogLevel.Information, Message = "Component {Component} loaded in {Milliseconds:0} ms on {Provider}.")]
    private static partial void LogComponentLoaded(ILogger logger, string component, double milliseconds, string provider);

    [LoggerMessage(Level = LogLevel.Information, Message = "Loaded {ModelPath} ({ClassName}) on {Provider}; scheduler {Scheduler}; safety checker {SafetyChecker}.")]
    private static partial void LogLoaded(ILogger logger, string modelPath, string className, string provider, string scheduler, bool safetyChecker);
}
