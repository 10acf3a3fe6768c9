using Microsoft.ML.OnnxRuntime;

namespace StableDiffusion.ExecutionProviders;

/// <summary>How ONNX Runtime sessions are created for a model component: provider, threads, optimisation, memory.</summary>
/// <remarks>Unset values keep ONNX Runtime's defaults. Bindable from configuration.</remarks>
public sealed record SessionSettings
{
    /// <summary>The execution provider; CPU by default.</summary>
    public ExecutionProvider ExecutionProvider { get; init; } = new();

    /// <summary>Threads used inside one operator (ONNX Runtime's default: one per physical core).</summary>
    public int? IntraOpNumThreads { get; init; }

    /// <summary>Threads used across operators when running in parallel mode.</summary>
    public int? InterOpNumThreads { get; init; }

    /// <summary>Graph optimisation level (all optimisations by default).</summary>
    public GraphOptimizationLevel GraphOptimizationLevel { get; init; } = GraphOptimizationLevel.ORT_ENABLE_ALL;

    /// <summary>
    /// Whether ONNX Runtime's intra-op threads spin for a while after each operator, waiting for the next, instead of going
    /// to sleep. Null (the default) lets them spin on the CPU provider, ONNX Runtime's own default: the full-size SD 1.5
    /// UNet on 16 cores took 1.78 s a call spinning and 2.84 s sleeping, because every parallel operator otherwise wakes
    /// each thread again (docs/performance.md). Sessions of other providers do not spin by default: their CPU threads run
    /// only the few nodes left to the CPU, and spinning would take cores from the host application for nothing. False
    /// shortens cancellation on machines with few cores (docs/hardening.md); true spins on any provider.
    /// </summary>
    public bool? AllowSpinning { get; init; }

    /// <summary>Whether the CPU memory arena is used (faster; keeps memory allocated between runs).</summary>
    public bool EnableMemoryArena { get; init; } = true;

    /// <summary>
    /// Whether ONNX Runtime plans memory from the first run's shapes and, from the second run on, allocates one block for
    /// all of a run's tensors (its memory pattern). Null (the default) plans on the CPU provider, and on CUDA only for a
    /// session that captures a CUDA graph (<c>enable_cuda_graph</c>, which needs it): elsewhere on CUDA the device arena
    /// keeps what the first run allocated tensor by tensor and the planned block comes on top of it, while without the
    /// pattern later runs reuse the first run's memory (docs/performance.md, "Memory on the GPU"). DirectML requires it
    /// off and it is then off whatever this says; false with graph capture is refused when the session is created.
    /// </summary>
    public bool? EnableMemoryPattern { get; init; }

    /// <summary>
    /// Whether the UNet's inputs and output are bound in device memory (IOBinding) when it runs on CUDA, so each step copies
    /// only the latents; null (the default) turns it on with CUDA. CUDA graphs (provider option <c>enable_cuda_graph</c>)
    /// require it.
    /// </summary>
    public bool? IoBinding { get; init; }

    /// <summary>
    /// Whether attention runs as ONNX Runtime's <c>com.microsoft.MultiHeadAttention</c>, which computes it in tiles instead
    /// of holding the whole [batch, heads, queries, keys] probability matrix: on the CPU a 768x768 image's peak memory drops
    /// from gigabytes to a few hundred megabytes, and attention is faster, with the same numbers up to float32 rounding
    /// (docs/performance.md). The float32 attention of diffusers' ONNX exports (UNet, VAE) is rewritten when the graph
    /// loads, where it matches the exporter's pattern exactly (the rest of the graph is untouched), and a float32 UNet built
    /// from diffusers weights is built with it (CUDA's fused float16 graphs always use it). Null (the default) turns it on
    /// for the CPU provider only; true for any provider (ONNX Runtime runs the operator on the CPU where a provider has no
    /// kernel for it); false loads exports as exported and builds attention from MatMul and Softmax.
    /// </summary>
    public bool? FuseAttention { get; init; }

    /// <summary>Fixed sizes for the graph's symbolic dimensions (<c>AddFreeDimensionOverrideByName</c>), such as
    /// <c>batch</c> = 2, <c>height</c> = 64, <c>width</c> = 64: lets ONNX Runtime plan memory and enables CUDA graphs.</summary>
    public IReadOnlyDictionary<string, long> FreeDimensionOverrides { get; init; } = new Dictionary<string, long>();

    /// <summary>Whether <see cref="FuseAttention"/>, or its default for the provider, runs attention as MultiHeadAttention.</summary>
    internal bool FusesAttention => FuseAttention ?? ExecutionProviderFamily.Of(ExecutionProvider).FusesAttentionByDefault;

    /// <summary>Whether <see cref="AllowSpinning"/>, or its default for the provider, lets the intra-op threads spin.</summary>
    internal bool Spins => AllowSpinning ?? ExecutionProviderFamily.Of(ExecutionProvider).SpinsByDefault;

    /// <summary>Whether <see cref="EnableMemoryPattern"/>, or its default for the provider, plans memory from the first run.</summary>
    internal bool PlansMemory => EnableMemoryPattern ?? ExecutionProviderFamily.Of(ExecutionProvider).PlansMemoryByDefault(ExecutionProvider);
}
