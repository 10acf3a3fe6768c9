using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;
using StableDiffusion.ExecutionProviders;
using StableDiffusion.Hub;

namespace StableDiffusion.Pipelines;

/// <summary>How a pipeline loads its model: execution providers and session settings, the safety checker, and where
/// models come from. Bindable from configuration (except the delegate, logger and progress members).</summary>
public sealed record StableDiffusionPipelineOptions
{
    /// <summary>Session settings for every component: execution provider (CPU by default), threads, optimisation, memory.</summary>
    public SessionSettings Session { get; init; } = new();

    /// <summary>Per-component overrides of <see cref="Session"/>, keyed by component name (<c>text_encoder</c>, <c>unet</c>,
    /// <c>vae_decoder</c>, <c>vae_encoder</c>, <c>safety_checker</c>; see <see cref="Models.ModelComponents"/>), e.g. the
    /// safety checker on the CPU while the UNet runs on CUDA.</summary>
    public IReadOnlyDictionary<string, SessionSettings> ComponentSessions { get; init; } = new Dictionary<string, SessionSettings>();

    /// <summary>
    /// Specialises the sessions for one image size and batch (fixed dimensions, and CUDA graphs when the UNet's CUDA
    /// provider enables them); null (the default) keeps every shape possible.
    /// </summary>
    public StaticShapeOptions? StaticShape { get; init; }

    /// <summary>
    /// The default of <see cref="DiffusionRequest.PromptWeighting"/> for requests that leave it null: false (the default)
    /// keeps diffusers' plain prompts, true reads every prompt in the web UI syntax.
    /// </summary>
    public bool PromptWeighting { get; init; }

    /// <summary>A last hook on each component's ONNX Runtime session options before its session is created.</summary>
    public Action<string, SessionOptions>? ConfigureSessionOptions { get; init; }

    /// <summary>
    /// Whether the safety checker runs (default true). Turning it off is your explicit decision: it is logged as a
    /// warning, and it is the only way to load a model that requires the checker but does not ship it.
    /// </summary>
    public bool EnableSafetyChecker { get; init; } = true;

    /// <summary>The revision (branch, tag or commit) when loading from the Hugging Face Hub; <c>main</c> when null.</summary>
    public string? Revision { get; init; }

    /// <summary>
    /// The weights variant to load from a repository in diffusers' PyTorch layout (diffusers' <c>variant</c>): <c>"fp16"</c>
    /// takes each component's <c>*.fp16.safetensors</c>, and a component without them its plain weights (with a warning);
    /// a model with the variant in no component is refused. <see langword="null"/> (the default) takes the plain weights.
    /// Only the chosen files are downloaded. ONNX exports have no variants and ignore it.
    /// </summary>
    public string? Variant
    {
        get;
        init => field = value is null || (value.Length > 0 && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-'))
            ? value
            : throw new ArgumentException($"'{value}' is not a weights variant: use a name such as \"fp16\" (letters, digits, '_' and '-').", nameof(value));
    }

    /// <summary>Hub endpoint, cache, token and offline settings; <see cref="HubOptions.FromEnvironment()"/> (HF_HOME,
    /// HF_HUB_CACHE, HF_TOKEN, HF_HUB_OFFLINE, HF_ENDPOINT) when null.</summary>
    public HubOptions? Hub { get; init; }

    /// <summary>Receives download progress in bytes when a model comes from the Hub.</summary>
    public IProgress<HubDownloadProgress>? DownloadProgress { get; init; }

    /// <summary>
    /// Whether each model's last run in a generation gives the unused part of ONNX Runtime's CPU memory arena back
    /// (ONNX Runtime's <c>memory.enable_memory_arena_shrinkage</c> run option): a large request's memory is returned
    /// when it ends instead of staying reserved for the next, at the cost of allocating it again. Off by default (the
    /// arena keeps its peak); needs the CPU arena (<see cref="SessionSettings.EnableMemoryArena"/>) in every session, and
    /// is skipped otherwise. Device memory (CUDA) is not affected.
    /// </summary>
    public bool ShrinkMemoryArenas { get; init; }

    /// <summary>Where logs go; none by default.</summary>
    public ILoggerFactory? LoggerFactory { get; init; }

    /// <summary>The session settings for <paramref name="component"/>.</summary>
    /// <param name="component">A component name.</param>
    public SessionSettings SessionFor(string component) =>
        ComponentSessions.TryGetValue(component, out SessionSettings? settings) ? settings : Session;
}
