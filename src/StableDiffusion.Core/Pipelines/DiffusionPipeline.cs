using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StableDiffusion.ExecutionProviders;
using StableDiffusion.Loading;
using StableDiffusion.Loading.SingleFile;
using StableDiffusion.Models;
using StableDiffusion.Safety;
using StableDiffusion.Schedulers;
using StableDiffusion.TextualInversion;
using StableDiffusion.Tokenization;

namespace StableDiffusion.Pipelines;

/// <summary>
/// What the Stable Diffusion pipelines share (diffusers' <c>DiffusionPipeline</c>): the loaded components, the swappable
/// scheduler, and disposal. Pipelines made from one another with <c>FromPipe</c> share one set of ONNX Runtime sessions.
/// </summary>
/// <remarks>
/// A pipeline is safe to call from several threads at once; every call has its own scheduler state and buffers. Disposing
/// releases the sessions once no pipeline sharing them and no call in flight uses them.
/// </remarks>
public abstract partial class DiffusionPipeline : IDisposable
{
    /// <summary>The model loaded when none is named: the ONNX export of Stable Diffusion v1.5 on the Hugging Face Hub.</summary>
    public const string DefaultModelId = "onnx-community/stable-diffusion-v1-5-ONNX";

    private IScheduler _scheduler;
    private int _disposed;

    private protected DiffusionPipeline(StableDiffusionComponents components, ILogger logger)
    {
        Components = components;
        Logger = logger;
        _scheduler = components.Scheduler;
    }

    /// <summary>The model folder the pipeline was loaded from.</summary>
    public string ModelPath => Components.ModelPath;

    /// <summary>The scheduler every call clones (diffusers' <c>pipe.scheduler</c>). Swap it at any time, e.g.
    /// <c>pipe.Scheduler = SchedulerFactory.Create("DPM++ 2M Karras", pipe.Scheduler.Config)</c>; calls in flight keep theirs.</summary>
    public IScheduler Scheduler
    {
        get => Volatile.Read(ref _scheduler);
        set => Volatile.Write(ref _scheduler, value ?? throw new ArgumentNullException(nameof(value)));
    }

    /// <summary>The CLIP tokenizer.</summary>
    public ClipTokenizer Tokenizer => Components.Tokenizer;

    /// <summary>The text encoder.</summary>
    public TextEncoderModel TextEncoder => Components.TextEncoder;

    /// <summary>The UNet.</summary>
    public UNetModel UNet => Components.UNet;

    /// <summary>The VAE decoder.</summary>
    public VaeDecoderModel VaeDecoder => Components.VaeDecoder;

    /// <summary>The safety checker, or null when it is off or the model has none.</summary>
    public SafetyChecker? SafetyChecker => Components.SafetyChecker;

    /// <summary>The default image height and width in pixels (512 for SD 1.5).</summary>
    public int DefaultImageSize => Components.Configuration.DefaultImageSize;

    /// <summary>The tokens of the textual inversions loaded with <see cref="LoadTextualInversion"/>, in order.</summary>
    public IReadOnlyList<string> TextualInversionTokens => Components.TextualInversionTokens;

    /// <summary>
    /// Loads a textual inversion embedding (diffusers' <c>load_textual_inversion</c>): its token can then be written in
    /// prompts and negative prompts. A token of several vectors is written once and stands for all of them (diffusers adds
    /// them as <c>token</c>, <c>token_1</c>, ...). Only the text encoder's session is rebuilt; every pipeline sharing this
    /// one's components (<c>FromPipe</c>) sees the token.
    /// </summary>
    /// <param name="path">
    /// The embedding: diffusers' <c>learned_embeds.safetensors</c> or <c>.bin</c> (one tensor named by its token), or a web
    /// UI embedding (<c>.pt</c> with <c>string_to_param</c>, <c>.safetensors</c> with <c>emb_params</c>). PyTorch files are read
    /// without running their pickles.
    /// </param>
    /// <param name="token">
    /// The token for prompts, such as <c>&lt;cat-toy&gt;</c>; null to take the file's own (its tensor's name, its
    /// <c>name</c> entry, or for an <c>emb_params</c> file its file name, as the web UIs do).
    /// </param>
    /// <exception cref="TextualInversionException">
    /// The file holds no embedding, its vectors do not have the text encoder's width, or the token (or one of its
    /// <c>token_n</c>) is already in the vocabulary.
    /// </exception>
    /// <exception cref="ModelLoadException">The file is missing or damaged, or the text encoder's graph cannot take new tokens.</exception>
    /// <remarks>Do not call it while a generation is encoding its prompt on another thread: it waits for that encoding to end.</remarks>
    public void LoadTextualInversion(string path, string? token = null)
    {
        ThrowIfDisposed();
        Components.AddTextualInversion(TextualInversionFile.Read(path, token));
    }

    /// <summary>Removes every textual inversion loaded (diffusers' <c>unload_textual_inversion</c>).</summary>
    public void UnloadTextualInversion()
    {
        ThrowIfDisposed();
        Components.RemoveTextualInversions();
    }

    internal StableDiffusionComponents Components { get; }

    private protected ILogger Logger { get; }

    /// <summary>Releases this pipeline's hold on the ONNX Runtime sessions.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            Components.Dispose();
            GC.SuppressFinalize(this);
        }
    }

    private protected static ILogger CreateLogger<T>(StableDiffusionPipelineOptions options) =>
        options.LoggerFactory?.CreateLogger<T>() ?? NullLogger<T>.Instance;

    /// <summary>Resolves (downloading if needed) and loads a model on background threads.</summary>
    private protected static async Task<TPipeline> LoadAsync<TPipeline>(string modelIdOrPath, StableDiffusionPipelineOptions? options,
        Func<StableDiffusionComponents, ILogger, TPipeline> create, CancellationToken cancellationToken)
    {
        options ??= new StableDiffusionPipelineOptions();
        ILogger logger = CreateLogger<TPipeline>(options);
        NativeRuntime.EnsureAvailable();
        string folder = await ModelLocator.ResolveAsync(modelIdOrPath, options, logger, cancellationToken, ModelLocator.GivenComponents(options)).ConfigureAwait(false);
        string name = ModelLocator.DisplayName(modelIdOrPath, folder);
        return await Task.Factory.StartNew(
            () => create(StableDiffusionComponents.Load(folder, options, logger, cancellationToken, name), logger),
            cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default).ConfigureAwait(false);
    }

    /// <summary>Resolves (downloading if needed) and loads a model on the calling thread.</summary>
    private protected static TPipeline Load<TPipeline>(string modelIdOrPath, StableDiffusionPipelineOptions? options,
        Func<StableDiffusionComponents, ILogger, TPipeline> create, CancellationToken cancellationToken)
    {
        options ??= new StableDiffusionPipelineOptions();
        ILogger logger = CreateLogger<TPipeline>(options);
        NativeRuntime.EnsureAvailable();
        // A folder resolves synchronously; only a Hub download blocks here.
        string folder = ModelLocator.ResolveAsync(modelIdOrPath, options, logger, cancellationToken, ModelLocator.GivenComponents(options)).GetAwaiter().GetResult();
        return create(StableDiffusionComponents.Load(folder, options, logger, cancellationToken, ModelLocator.DisplayName(modelIdOrPath, folder)), logger);
    }

    /// <summary>
    /// Loads a single-file checkpoint on background threads: the file is checked first (a file that is not an SD 1.x
    /// checkpoint fails before anything is downloaded), then its base model is resolved (downloading what the file lacks).
    /// </summary>
    private protected static Task<TPipeline> LoadSingleFileAsync<TPipeline>(string path, StableDiffusionPipelineOptions? options,
        Func<StableDiffusionComponents, ILogger, TPipeline> create, CancellationToken cancellationToken) =>
        LoadSingleFileAsync(path, options, create, background: true, cancellationToken);

    /// <summary>Loads a single-file checkpoint on the calling thread (see <see cref="LoadSingleFileAsync{TPipeline}(string, StableDiffusionPipelineOptions?, Func{StableDiffusionComponents, ILogger, TPipeline}, CancellationToken)"/>).</summary>
    private protected static TPipeline LoadSingleFile<TPipeline>(string path, StableDiffusionPipelineOptions? options,
        Func<StableDiffusionComponents, ILogger, TPipeline> create, CancellationToken cancellationToken) =>
        // A base model folder resolves synchronously, so everything runs here; only a Hub download blocks.
        LoadSingleFileAsync(path, options, create, background: false, cancellationToken).GetAwaiter().GetResult();

    private static async Task<TPipeline> LoadSingleFileAsync<TPipeline>(string path, StableDiffusionPipelineOptions? options,
        Func<StableDiffusionComponents, ILogger, TPipeline> create, bool background, CancellationToken cancellationToken)
    {
        options ??= new StableDiffusionPipelineOptions();
        ILogger logger = CreateLogger<TPipeline>(options);
        NativeRuntime.EnsureAvailable();
        SingleFileCheckpoint checkpoint = SingleFileCheckpoint.Open(path);
        try
        {
            string baseFolder = await ModelLocator.ResolveBaseModelAsync(options.BaseModel ?? checkpoint.DefaultBase, options.EnableSafetyChecker, options, logger, cancellationToken).ConfigureAwait(false);
            TPipeline Load() => create(StableDiffusionComponents.Load(baseFolder, options, logger, cancellationToken, Path.GetFullPath(path), singleFile: checkpoint), logger);
            return background
                ? await Task.Factory.StartNew(Load, cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default).ConfigureAwait(false)
                : Load();
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }

    /// <summary>Runs a generation on a background thread, so the caller's thread (a UI thread, say) stays free.</summary>
    private protected Task<GenerationResult> RunAsync(Func<GenerationResult> generate, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        return Task.Factory.StartNew(generate, cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    /// <summary>Takes a reference on the components for one call, so disposal waits for it.</summary>
    private protected StableDiffusionComponents AcquireComponents()
    {
        ThrowIfDisposed();
        return Components.AddReference();
    }

    /// <summary>Takes a reference on the components for a pipeline made with <c>FromPipe</c>; refused once this one is disposed,
    /// even while other pipelines still share the sessions.</summary>
    private protected static StableDiffusionComponents ShareComponents(DiffusionPipeline pipeline)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        return pipeline.AcquireComponents();
    }

    private protected void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
}
