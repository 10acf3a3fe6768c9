using Microsoft.ML.OnnxRuntime;
using StableDiffusion.ExecutionProviders.Cuda;

namespace StableDiffusion.ExecutionProviders.Families;

/// <summary>
/// NVIDIA CUDA. Its sessions keep state per calling thread (captured CUDA graphs, cuDNN and cuBLAS handles, tuned
/// convolution plans), so every call goes through one device thread: calls from each generation's own thread rebuilt it
/// every time (measured: a fused UNet at 16 ms a call instead of 8 without CUDA graphs; graphs never replayed). Inputs are
/// bound in CUDA device memory, and <c>enable_cuda_graph</c> captures the UNet as a CUDA graph.
/// </summary>
internal class CudaProvider : ExecutionProviderFamily
{
    public CudaProvider()
        : this("CUDAExecutionProvider", ["CUDA"], "Microsoft.ML.OnnxRuntime.Gpu (or .Gpu.Linux / .Gpu.Windows), with CUDA and cuDNN 9 installed")
    {
    }

    /// <summary>A provider that runs on CUDA (TensorRT).</summary>
    private protected CudaProvider(string ortName, string[] names, string package)
        : base(ortName, names, package)
    {
    }

    public override bool NeedsDeviceThread => true;

    public override string DeviceMemoryRequirement => "make sure the CUDA runtime (libcudart) can be loaded";

    public override string? GraphCaptureOption => "enable_cuda_graph";

    // With the memory pattern, a session's second run allocates one block for the tensors its first run allocated one by
    // one, and the arena keeps both (SD 1.5 on an H200: 396 MiB more after the first image, docs/performance.md "Memory on
    // the GPU"). A session that captures a graph keeps it: the capture run must not allocate device memory, and the
    // pattern's first two runs reserve all it needs; without it a batch of eight failed at capture (CUDA error 901).
    public override bool PlansMemoryByDefault(ExecutionProvider provider) => CapturesGraphs(provider);

    public override Pipelines.ComputePrecision DefaultComputePrecision => Pipelines.ComputePrecision.Float16;

    // The fused operators are ONNX Runtime's Stable Diffusion optimizer's, made for float16 (their attention is always
    // MultiHeadAttention); float32 gets the base flavour (plain, or MultiHeadAttention where FuseAttention is on).
    public override Onnx.Builders.GraphFlavor BuiltGraphFlavor(string component, Pipelines.ComputePrecision precision, bool fuseAttention) =>
        precision == Pipelines.ComputePrecision.Float16 ? Onnx.Builders.GraphFlavor.CudaFused : base.BuiltGraphFlavor(component, precision, fuseAttention);

    public override void Append(SessionOptions options, ExecutionProvider provider)
    {
        using var cuda = new OrtCUDAProviderOptions();
        cuda.UpdateOptions(ProviderOptions(provider));
        options.AppendExecutionProvider_CUDA(cuda);
    }

    /// <summary>
    /// The options the CUDA provider gets: the caller's, the device, and the SDK's defaults where the caller set none.
    /// The arena grows by what is asked (<c>kSameAsRequested</c>) instead of doubling (ONNX Runtime's default,
    /// <c>kNextPowerOfTwo</c>), which reserved memory nobody used: on SD 1.5 (H200, 2026-12-02) 944 MiB less in use after
    /// loading, 338 MiB less at the peak of one image, 1,440 MiB less for eight, at the same speed.
    /// </summary>
    internal static Dictionary<string, string> ProviderOptions(ExecutionProvider provider)
    {
        Dictionary<string, string> options = WithDevice(provider);
        options.TryAdd("arena_extend_strategy", "kSameAsRequested");
        return options;
    }

    public override DeviceMemory? CreateDeviceMemory(ExecutionProvider provider) =>
        CudaRuntime.IsAvailable ? new CudaDeviceMemory(provider.DeviceId) : null;
}
