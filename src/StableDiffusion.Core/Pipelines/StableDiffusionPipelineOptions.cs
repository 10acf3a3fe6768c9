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

    /// <summary>
    /// A last hook on each component's ONNX Runtime session options before its session is created, with the component's
    /// name. Never called for two sessions at once, but in no fixed order of components: the UNet loads beside the others.
    /// </summary>
    public Action<string, SessionOptions>? ConfigureSessionOptions { get; init; }

    /// <summary>
    /// Whether the VAE decodes the images of a call one at a time (diffusers' <c>enable_vae_slicing</c>) instead of all in
    /// one run (the default, false). The decoder's working memory is then one image's, not the whole batch's, which bounds
    /// the memory that several images per call need, on a GPU especially; each image is decoded on its own either way, so the
    /// images are the same up to floating-point rounding of the provider's kernels. With <see cref="StaticShape"/> the
    /// decoder is specialised for one image.
    /// </summary>
    public bool EnableVaeSlicing { get; init; }

    /// <summary>
    /// Whether the safety checker runs (default true). Turning it off is your explicit decision: it is logged as a
    /// warning, and it is the only way to load a model that requires the checker but does not ship it.
    /// </summary>
    public bool EnableSafetyChecker { get; init; } = true;

    /// <summary>
    /// The precision that graphs built from diffusers weights compute in (diffusers' <c>torch_dtype</c>); null (the default)
    /// takes the execution provider's: float32 on the CPU, float16 on CUDA. ONNX exports keep their own types.
    /// </summary>
    public ComputePrecision? ComputePrecision { get; init; }

    /// <summary>
    /// Components loaded separately that the pipeline takes instead of loading its own (diffusers' <c>unet=</c>,
    /// <c>text_encoder=</c>, <c>vae=</c> arguments), by component name: <c>text_encoder</c>, <c>unet</c>, <c>vae_decoder</c>,
    /// <c>vae_encoder</c> (see <see cref="Models.ModelComponents"/>), such as
    /// <c>options with { Components = new Dictionary&lt;string, OnnxModel&gt; { ["unet"] = UNetModel.FromPretrained("inpaint-unet") } }</c>.
    /// They are not loaded from the model folder, and they stay yours: dispose them after the pipelines that use them.
    /// </summary>
    public IReadOnlyDictionary<string, Models.OnnxModel> Components { get; init; } = new Dictionary<string, Models.OnnxModel>();

    /// <summary>
    /// For <c>FromSingleFile</c>: the Stable Diffusion 1.x model in the diffusers layout (a folder or a Hub repository id)
    /// that gives what a single-file checkpoint lacks: the components' configurations, the tokenizer, the scheduler, the
    /// feature extractor and the safety checker (diffusers' <c>config</c> argument of <c>from_single_file</c>). Null (the
    /// default) takes diffusers' choice: <c>stable-diffusion-v1-5/stable-diffusion-v1-5</c>, or
    /// <c>stable-diffusion-v1-5/stable-diffusion-inpainting</c> for an inpainting checkpoint; from the Hub, only those files
    /// are downloaded, once. <c>FromPretrained</c> ignores it.
    /// </summary>
    public string? BaseModel { get; init; }

    /// <summary>The revision (branch, tag or commit) when loading from the Hugging Face Hub; <c>main</c> when null.</summary>
    public string? Revision { get; init; }

    /// <summary>
    /// The weights variant to load from a model in the diffusers layout (diffusers' <c>variant</c>), from a folder or the
    /// Hub: <c>"fp16"</c> takes each component's <c>*.fp16.safetensors</c> (<c>diffusion_pytorch_model.fp16.safetensors</c>,
    /// <c>model.fp16.safetensors</c>), and a component without them its plain weights; a Hub repository with the variant in
    /// no component is refused, and only the chosen files are downloaded. <see langword="null"/> (the default) takes the
    /// plain weights. The variant names the files, not the precision: see <see cref="ComputePrecision"/>. ONNX exports have
    /// no variants and ignore it.
    /// </summary>
    /// <exception cref="ArgumentException">Set to a name that is empty or has characters other than letters, digits, '_' and '-'.</exception>
    public string? Variant
    {
        get;
        init
        {
            Loading.ComponentSource.RequireValidVariant(value);
            field = value;
        }
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
