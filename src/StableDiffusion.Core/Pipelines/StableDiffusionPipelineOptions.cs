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

    /// <summary>A last hook on each component's ONNX Runtime session options before its session is created.</summary>
    public Action<string, SessionOptions>? ConfigureSessionOptions { get; init; }

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
    /// The weights variant to load from diffusers folders (diffusers' <c>variant</c>): <c>"fp16"</c> takes
    /// <c>diffusion_pytorch_model.fp16.safetensors</c> (and <c>model.fp16.safetensors</c>) where a component has it, and its
    /// plain file where it does not; null (the default) takes the plain files. The variant names the files, not the
    /// precision: see <see cref="ComputePrecision"/>.
    /// </summary>
    public string? Variant { get; init; }

    /// <summary>
    /// Components loaded separately that the pipeline takes instead of loading its own (diffusers' <c>unet=</c>,
    /// <c>text_encoder=</c>, <c>vae=</c> arguments), by component name: <c>text_encoder</c>, <c>unet</c>, <c>vae_decoder</c>,
    /// <c>vae_encoder</c> (see <see cref="Models.ModelComponents"/>), such as
    /// <c>options with { Components = new Dictionary&lt;string, OnnxModel&gt; { ["unet"] = UNetModel.FromPretrained("inpaint-unet") } }</c>.
    /// They are not loaded from the model folder, and they stay yours: dispose them after the pipelines that use them.
    /// </summary>
    public IReadOnlyDictionary<string, Models.OnnxModel> Components { get; init; } = new Dictionary<string, Models.OnnxModel>();

    /// <summary>The revision (branch, tag or commit) when loading from the Hugging Face Hub; <c>main</c> when null.</summary>
    public string? Revision { get; init; }

    /// <summary>Hub endpoint, cache, token and offline settings; <see cref="HubOptions.FromEnvironment()"/> (HF_HOME,
    /// HF_HUB_CACHE, HF_TOKEN, HF_HUB_OFFLINE, HF_ENDPOINT) when null.</summary>
    public HubOptions? Hub { get; init; }

    /// <summary>Receives download progress in bytes when a model comes from the Hub.</summary>
    public IProgress<HubDownloadProgress>? DownloadProgress { get; init; }

    /// <summary>Where logs go; none by default.</summary>
    public ILoggerFactory? LoggerFactory { get; init; }

    /// <summary>The session settings for <paramref name="component"/>.</summary>
    /// <param name="component">A component name.</param>
    public SessionSettings SessionFor(string component) =>
        ComponentSessions.TryGetValue(component, out SessionSettings? settings) ? settings : Session;
}
