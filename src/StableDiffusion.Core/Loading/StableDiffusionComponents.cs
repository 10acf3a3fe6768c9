using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using StableDiffusion.ExecutionProviders;
using StableDiffusion.Models;
using StableDiffusion.Pipelines;
using StableDiffusion.Pipelines.Internal;
using StableDiffusion.Safety;
using StableDiffusion.Schedulers;
using StableDiffusion.Tokenization;

namespace StableDiffusion.Loading;

/// <summary>
/// The loaded components of a model, by their <c>model_index.json</c> names, shared by the pipelines made from it: one
/// ONNX Runtime session per graph (from an ONNX export, built from diffusers weights, or given by the caller), the
/// tokenizer and the scheduler. Which graphs there are is the <see cref="PipelineDefinition"/>'s business. Reference-counted:
/// the sessions it loaded are released when the last pipeline using them is disposed; given components stay the caller's.
/// The text encoder's and UNet's sessions are replaced when LoRA, clip skip or textual inversion needs other weights or
/// outputs (<see cref="Replace"/>).
/// </summary>
internal sealed partial class StableDiffusionComponents : IDisposable
{
    private readonly ConcurrentDictionary<string, OnnxModel> _graphs;
    private readonly IReadOnlyDictionary<string, Lazy<OnnxModel>> _lazyGraphs;
    private readonly IReadOnlyDictionary<string, OnnxModel> _given;
    private readonly IDisposable? _singleFile;
    private int _references = 1;

    private StableDiffusionComponents(string modelPath, string modelName, ModelIndex index, PipelineDefinition definition, StableDiffusionPipelineOptions options,
        IReadOnlyDictionary<string, OnnxModel> graphs, IReadOnlyDictionary<string, Lazy<OnnxModel>> lazyGraphs, IReadOnlyDictionary<string, OnnxModel> given,
        SafetyChecker? safetyChecker, ClipTokenizer tokenizer, IScheduler scheduler, ModelConfiguration configuration, IDisposable? singleFile)
    {
        _singleFile = singleFile;
        ModelPath = modelPath;
        ModelName = modelName;
        Index = index;
        Definition = definition;
        Options = options;
        _graphs = new ConcurrentDictionary<string, OnnxModel>(graphs, StringComparer.Ordinal);
        _lazyGraphs = lazyGraphs;
        _given = given;
        SafetyChecker = safetyChecker;
        if (safetyChecker is not null)
        {
            SafetyThread = DeviceThread.For(options.SessionFor(ModelComponents.SafetyChecker).ExecutionProvider, ModelComponents.SafetyChecker);
        }

        Tokenizer = tokenizer;
        _baseTokenizer = tokenizer;
        Scheduler = scheduler;
        Configuration = configuration;
    }

    public string ModelPath { get; }

    /// <summary>What the user loaded: the Hub repository id, or the folder's full path; recorded in each image's parameters.</summary>
    public string ModelName { get; }

    public StableDiffusionPipelineOptions Options { get; }

    public ModelIndex Index { get; }

    /// <summary>The pipeline family the components were loaded for.</summary>
    public PipelineDefinition Definition { get; }

    /// <summary>The text encoder: the loaded one, or its replacement once clip skip, textual inversion or a LoRA needs one (see the TextConditioning part).</summary>
    public TextEncoderModel TextEncoder => Graph<TextEncoderModel>(ModelComponents.TextEncoder);

    /// <summary>The UNet: the loaded one, or its replacement with LoRA-merged weights (see the Lora part).</summary>
    public UNetModel UNet => Graph<UNetModel>(ModelComponents.UNet);

    public VaeDecoderModel VaeDecoder => Graph<VaeDecoderModel>(ModelComponents.VaeDecoder);

    public SafetyChecker? SafetyChecker { get; }

    /// <summary>The thread that makes the safety checker's calls when its provider keeps state per thread (CUDA); null otherwise.</summary>
    public DeviceThread? SafetyThread { get; }

    /// <summary>The tokenizer, with the tokens of the loaded textual inversions.</summary>
    public ClipTokenizer Tokenizer { get; private set; }

    public IScheduler Scheduler { get; }

    public ModelConfiguration Configuration { get; }

    /// <summary>The UNet's input channels: the graph's when fixed, else 9 for an inpainting pipeline's model and 4 otherwise.</summary>
    public int UNetInChannels => UNet.InChannels ?? ComponentRegistry.ChannelsByClassName(Index);

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

    /// <summary>Whether the model has a VAE encoder (image-to-image and inpainting need it).</summary>
    public bool HasVaeEncoder => _graphs.ContainsKey(ModelComponents.VaeEncoder) || _lazyGraphs.ContainsKey(ModelComponents.VaeEncoder);

    /// <summary>The VAE encoder, loaded on first use: text-to-image never needs it.</summary>
    public VaeEncoderModel VaeEncoder => HasVaeEncoder
        ? Graph<VaeEncoderModel>(ModelComponents.VaeEncoder)
        : throw new ModelLoadException(
            $"The model '{ModelPath}' has no {ModelComponents.VaeEncoder}/model.onnx (nor a vae/ folder to build it from), which image-to-image and inpainting need.", ModelPath);

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

        foreach ((string name, OnnxModel model) in _graphs)
        {
            if (!IsGiven(name, model))
            {
                model.Dispose();
            }
        }

        foreach (Lazy<OnnxModel> lazy in _lazyGraphs.Values.Where(l => l.IsValueCreated))
        {
            lazy.Value.Dispose();
        }

        SafetyThread?.Dispose();
        SafetyChecker?.Dispose();
        _singleFile?.Dispose();
    }

    /// <summary>
    /// Loads what <paramref name="definition"/> needs from a model folder (ONNX exports and diffusers layouts alike), taking
    /// the graphs of <see cref="StableDiffusionPipelineOptions.Components"/> as given instead of loading them. With
    /// <paramref name="singleFile"/>, the folder is its base model and the file gives the text encoder, UNet and VAE; the
    /// components own it once loaded (the caller disposes it when loading fails).
    /// </summary>
    public static StableDiffusionComponents Load(string modelPath, StableDiffusionPipelineOptions options, ILogger logger, CancellationToken cancellationToken,
        string? modelName = null, PipelineDefinition? definition = null, SingleFile.SingleFileCheckpoint? singleFile = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelPath);
        ArgumentNullException.ThrowIfNull(options);
        definition ??= PipelineDefinition.StableDiffusion;
        ComponentSource.RequireValidVariant(options.Variant);
        modelPath = Path.GetFullPath(modelPath);
        if (!Directory.Exists(modelPath))
        {
            throw new ModelLoadException(
                $"The model folder '{modelPath}' does not exist. Pass a folder in the diffusers layout (or its ONNX layout), or a Hugging Face repository id such as 'stable-diffusion-v1-5/stable-diffusion-v1-5'.",
                modelPath);
        }

        ModelIndex index = ModelIndex.Load(Path.Combine(modelPath, ModelIndex.FileName));
        IReadOnlyDictionary<string, OnnxModel> given = GivenComponents(options, definition);
        ModelConfiguration configuration = ModelConfiguration.Load(modelPath);
        var registry = new ComponentRegistry(modelPath, index, options, configuration, logger, singleFile);
        // Anything missing is reported before anything is loaded.
        if (definition.Graphs.FirstOrDefault(g => !given.ContainsKey(g) && registry.Find(g) is null) is { } missing)
        {
            throw registry.Missing(missing);
        }

        bool hasChecker = registry.HasSafetyChecker;
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
                    $"{ModelComponents.SafetyChecker}/model.onnx (nor {ModelComponents.SafetyChecker}/config.json with its weights). Use a model folder that includes it, or load without it by setting " +
                    $"{nameof(StableDiffusionPipelineOptions)}.{nameof(StableDiffusionPipelineOptions.EnableSafetyChecker)} = false (you then take responsibility for the outputs).",
                    modelPath);
            }

            LogNoSafetyChecker(logger, modelPath);
        }

        if (useChecker && !File.Exists(Path.Combine(modelPath, ModelComponents.FeatureExtractor, "preprocessor_config.json")))
        {
            throw new ModelLoadException(
                $"The model '{modelPath}' has a safety checker but no {ModelComponents.FeatureExtractor}/preprocessor_config.json, which says how to prepare its input.", modelPath);
        }

        ClipTokenizer tokenizer = registry.LoadTokenizer();
        IScheduler scheduler = registry.LoadScheduler();
        var graphs = new Dictionary<string, OnnxModel>(given, StringComparer.Ordinal);
        SafetyChecker? checker = null;
        // The UNet, the largest component (its session reads, converts and uploads most of the weights), loads on the thread
        // pool beside the other components, which load one after another here: at most two sessions are created at once,
        // so the host's memory at load stays near what one large component needs.
        Task<OnnxModel>? unetLoad = definition.Graphs.Contains(ModelComponents.UNet) && !given.ContainsKey(ModelComponents.UNet)
            ? Task.Run(() => registry.LoadGraph(ModelComponents.UNet))
            : null;
        try
        {
            foreach (string graph in definition.Graphs.Where(g => !given.ContainsKey(g) && g != ModelComponents.UNet))
            {
                cancellationToken.ThrowIfCancellationRequested();
                graphs[graph] = registry.LoadGraph(graph);
            }

            cancellationToken.ThrowIfCancellationRequested();
            checker = useChecker ? registry.LoadSafetyChecker() : null;
            if (unetLoad is not null)
            {
                graphs[ModelComponents.UNet] = unetLoad.GetAwaiter().GetResult();
            }

            cancellationToken.ThrowIfCancellationRequested();
            CheckCompatibility(modelPath, (TextEncoderModel)graphs[ModelComponents.TextEncoder], (UNetModel)graphs[ModelComponents.UNet]);
        }
        catch
        {
            // A UNet still loading is waited for and released too; its own failure, if any, is not the one reported.
            if (unetLoad is not null && !graphs.ContainsKey(ModelComponents.UNet))
            {
                Task.WaitAny(unetLoad); // waits without throwing the UNet's own failure
                if (unetLoad.IsCompletedSuccessfully)
                {
                    unetLoad.Result.Dispose();
                }
            }

            foreach ((string name, OnnxModel model) in graphs.Where(g => !given.ContainsKey(g.Key)))
            {
                model.Dispose();
            }

            checker?.Dispose();
            throw;
        }

        var lazyGraphs = definition.LazyGraphs
            .Where(g => !given.ContainsKey(g) && registry.Find(g) is not null)
            .ToDictionary(g => g, g => new Lazy<OnnxModel>(() => registry.LoadGraph(g), LazyThreadSafetyMode.ExecutionAndPublication), StringComparer.Ordinal);
        LogLoaded(logger, modelPath, index.ClassName, options.Session.ExecutionProvider.ToString(), scheduler.Config.ClassName, checker is not null);
        return new StableDiffusionComponents(modelPath, modelName ?? modelPath, index, definition, options, graphs, lazyGraphs,
            given, checker, tokenizer, scheduler, configuration, singleFile);
    }

    private T Graph<T>(string component) where T : OnnxModel =>
        (T)(_graphs.TryGetValue(component, out OnnxModel? model) ? model : _lazyGraphs[component].Value);

    /// <summary>
    /// The base graph of <paramref name="component"/> (bytes, and the folder of its external weights) that sessions rebuilt
    /// after loading are made from (LoRA-merged weights, clip skip outputs, textual inversion rows): the one place that
    /// reads it, from the loaded component whatever its source (an ONNX export's file, the graph built from a diffusers
    /// folder or a single file, a given component's own). Replacements keep their base, so this never sees merged weights.
    /// </summary>
    /// <exception cref="ModelLoadException">An export's file can no longer be read.</exception>
    private BuiltGraph GraphSource(string component)
    {
        OnnxModel model = Graph<OnnxModel>(component);
        try
        {
            return model.BaseGraph();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ModelLoadException($"The {component} graph '{model.ModelPath}' cannot be read again to rebuild its session: {ex.Message}", model.ModelPath, ex);
        }
    }

    /// <summary>
    /// Puts <paramref name="replacement"/> in the place of <paramref name="component"/>'s model and releases the previous
    /// session, unless it is the caller's (a given component stays theirs). Callers make sure no call uses the previous one.
    /// </summary>
    private void Replace(string component, OnnxModel replacement)
    {
        OnnxModel previous = _graphs[component];
        _graphs[component] = replacement;
        if (!IsGiven(component, previous))
        {
            previous.Dispose();
        }
    }

    private bool IsGiven(string component, OnnxModel model) => _given.TryGetValue(component, out OnnxModel? given) && ReferenceEquals(given, model);

    // The caller's components, each checked to be a graph this family takes, of the right type.
    private static IReadOnlyDictionary<string, OnnxModel> GivenComponents(StableDiffusionPipelineOptions options, PipelineDefinition definition)
    {
        foreach ((string name, OnnxModel model) in options.Components)
        {
            ArgumentNullException.ThrowIfNull(model, $"{nameof(StableDiffusionPipelineOptions.Components)}[\"{name}\"]");
            if (!definition.Graphs.Contains(name) && !definition.LazyGraphs.Contains(name))
            {
                throw new ArgumentException(
                    $"{nameof(StableDiffusionPipelineOptions.Components)} names '{name}', which {definition.Family} pipelines do not take; they take {string.Join(", ", definition.Graphs.Concat(definition.LazyGraphs))}.",
                    nameof(options));
            }

            if (model.Component != name)
            {
                throw new ArgumentException(
                    $"{nameof(StableDiffusionPipelineOptions.Components)}[\"{name}\"] is a {model.GetType().Name} (a {model.Component}); give it as [\"{model.Component}\"] or pass the {name}.",
                    nameof(options));
            }
        }

        return options.Components;
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

    [LoggerMessage(Level = LogLevel.Information, Message = "Loaded {ModelPath} ({ClassName}) on {Provider}; scheduler {Scheduler}; safety checker {SafetyChecker}.")]
    private static partial void LogLoaded(ILogger logger, string modelPath, string className, string provider, string scheduler, bool safetyChecker);
}
