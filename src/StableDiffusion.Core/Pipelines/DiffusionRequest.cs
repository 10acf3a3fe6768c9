using System.Numerics.Tensors;
using StableDiffusion.Models;
using StableDiffusion.Previews;
using StableDiffusion.Schedulers;

namespace StableDiffusion.Pipelines;

/// <summary>
/// What every Stable Diffusion pipeline call takes: prompts, guidance, steps and seed, with diffusers' names and
/// defaults. Each pipeline's own request (such as <see cref="TextToImageRequest"/>) adds what is specific to it.
/// </summary>
public abstract record DiffusionRequest
{
    private protected DiffusionRequest(IReadOnlyList<string>? prompts)
    {
        Prompts = prompts ?? [];
    }

    /// <summary>The prompts, one image batch each; empty when <see cref="PromptEmbeds"/> is given instead.</summary>
    public IReadOnlyList<string> Prompts { get; init; }

    /// <summary>One negative prompt for every prompt (diffusers' <c>negative_prompt</c> as a string).</summary>
    public string? NegativePrompt { get; init; }

    /// <summary>A negative prompt per prompt (diffusers' <c>negative_prompt</c> as a list); its count must equal the prompts'.</summary>
    public IReadOnlyList<string>? NegativePrompts { get; init; }

    /// <summary>The number of denoising steps (default 50).</summary>
    public int NumInferenceSteps { get; init; } = 50;

    /// <summary>The classifier-free guidance scale (default 7.5); guidance is on only when it is greater than 1.</summary>
    public float GuidanceScale { get; init; } = 7.5f;

    /// <summary>Guidance rescale factor from "Common Diffusion Noise Schedules and Sample Steps are Flawed" (0 = off).</summary>
    public float GuidanceRescale { get; init; }

    /// <summary>How many images each prompt makes (default 1).</summary>
    public int NumImagesPerPrompt { get; init; } = 1;

    /// <summary>DDIM's eta (0 = deterministic); schedulers without eta ignore it.</summary>
    public float Eta { get; init; }

    /// <summary>
    /// The seed of the default generator, torch's CPU stream: seed 42 here gives what
    /// <c>generator=torch.Generator("cpu").manual_seed(42)</c> gives in diffusers. When neither a seed nor a
    /// <see cref="Generator"/> is given, a random seed is chosen and reported in the result.
    /// </summary>
    public ulong? Seed { get; init; }

    /// <summary>
    /// The noise generator, instead of <see cref="Seed"/>: for example a <see cref="Randomness.TorchCudaGenerator"/> to
    /// reproduce diffusers runs seeded on a CUDA device. The pipeline draws from it in diffusers' order.
    /// </summary>
    public INoiseGenerator? Generator { get; init; }

    /// <summary>
    /// Whether the prompts use the web UI syntax and may be longer than 77 tokens: <c>(word)</c>, <c>(word:1.3)</c>,
    /// <c>[word]</c>, nesting, <c>\(</c> escapes and <c>BREAK</c>, weighted and chunked as diffusers' long-prompt-weighting
    /// community pipeline does (at most 3 chunks of 75 tokens). Null (the default) takes
    /// <see cref="StableDiffusionPipelineOptions.PromptWeighting"/>; false is diffusers' plain prompts, cut at 77 tokens with a
    /// logged warning.
    /// </summary>
    public bool? PromptWeighting { get; init; }

    /// <summary>
    /// diffusers' <c>clip_skip</c>: the prompt embeddings come from the text encoder's layer this many before the last
    /// (through its final layer norm); null (the default) for the last. Web UIs count from 1 with no skip: their
    /// "Clip skip: 2" is 1 here. As in diffusers, plain negative prompts keep the last layer; with
    /// <see cref="PromptWeighting"/> both take the skip, as the long-prompt-weighting pipeline does.
    /// </summary>
    public int? ClipSkip { get; init; }

    /// <summary>Precomputed prompt embeddings [batch, 77, hidden] instead of <see cref="Prompts"/>.</summary>
    public Tensor<float>? PromptEmbeds { get; init; }

    /// <summary>Precomputed negative prompt embeddings, of the same shape as the prompt embeddings.</summary>
    public Tensor<float>? NegativePromptEmbeds { get; init; }

    /// <summary>
    /// The scale of the active LoRA adapters for this call (diffusers' <c>cross_attention_kwargs={"scale": s}</c>), applied
    /// to the UNet and the text encoder; 1 when null. Adapters fused with <c>FuseLora</c> keep their own scale.
    /// </summary>
    public float? LoraScale { get; init; }

    /// <summary>A scheduler for this call only, instead of the pipeline's (it is cloned, never changed).</summary>
    public IScheduler? Scheduler { get; init; }

    /// <summary>
    /// Contributors of the UNet's inputs beyond the sample, timestep and prompt embeddings, for UNets that take more (LCM's
    /// <c>timestep_cond</c>, SDXL's added conditions, IP-Adapter embeddings, ControlNet residuals): diffusers' extra UNet
    /// keyword arguments. Each of the UNet's <see cref="UNetModel.ExtraInputNames"/> must be written by exactly one; empty
    /// (the default) for the UNets of SD 1.x.
    /// </summary>
    public IReadOnlyList<IUNetInputContributor> UNetInputs { get; init; } = [];

    /// <summary>Called after every denoising step with the step, the timestep and the latents (which it may change),
    /// like diffusers' <c>callback_on_step_end</c>. Set <see cref="StepEndContext.Interrupt"/> to stop early.</summary>
    public Action<StepEndContext>? OnStepEnd { get; init; }

    /// <summary>
    /// Renders a preview of the first image after denoising steps, reported as <see cref="GenerationProgress.Preview"/>
    /// (only when a progress receiver is given): <see cref="LatentRgbPreview.StableDiffusion1"/> for a nearly free one at an
    /// eighth of the size, or a <see cref="TinyAutoencoderPreview"/> for a full-size one. None by default.
    /// </summary>
    public LatentPreview? Preview { get; init; }

    /// <summary>With <see cref="Preview"/>: a preview every this many steps, and after the last (default 1: every step).</summary>
    public int PreviewInterval { get; init; } = 1;
}
