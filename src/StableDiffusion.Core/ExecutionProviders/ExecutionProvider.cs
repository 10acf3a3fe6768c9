using Microsoft.ML.OnnxRuntime;

namespace StableDiffusion.ExecutionProviders;

/// <summary>
/// An ONNX Runtime execution provider and its options: where a model component runs (CPU, CUDA, TensorRT, DirectML,
/// CoreML, OpenVINO, ROCm, or any other provider by its ONNX Runtime name).
/// </summary>
/// <remarks>
/// The SDK references ONNX Runtime's managed package only; the application chooses the native package, and with it which
/// providers exist: <c>Microsoft.ML.OnnxRuntime</c> (CPU; CoreML on Apple platforms), <c>Microsoft.ML.OnnxRuntime.Gpu</c>
/// (CUDA and TensorRT), <c>Microsoft.ML.OnnxRuntime.DirectML</c>, <c>Intel.ML.OnnxRuntime.OpenVino</c>. Asking for a provider the
/// installed package lacks fails at load time with an <see cref="ExecutionProviderException"/> naming the package to add.
/// Bindable from configuration: <c>{ "Name": "CUDA", "DeviceId": 0, "Options": { "cudnn_conv_algo_search": "HEURISTIC" } }</c>.
/// </remarks>
public sealed record ExecutionProvider
{
    /// <summary>The provider: <c>CPU</c>, <c>CUDA</c>, <c>TensorRT</c>, <c>DirectML</c>, <c>CoreML</c>, <c>OpenVINO</c>, <c>ROCm</c>,
    /// or ONNX Runtime's own name of any other provider (case-insensitive; <c>CUDAExecutionProvider</c> works too).</summary>
    public string Name { get; init; } = "CPU";

    /// <summary>The device index for GPU providers (CUDA, TensorRT, DirectML, ROCm).</summary>
    public int DeviceId { get; init; }

    /// <summary>Provider options passed to ONNX Runtime as they are, such as <c>cudnn_conv_algo_search</c>,
    /// <c>gpu_mem_limit</c> or <c>enable_cuda_graph</c> for CUDA, or <c>device_type</c> for OpenVINO.</summary>
    public IReadOnlyDictionary<string, string> Options { get; init; } = new Dictionary<string, string>();

    /// <summary>The CPU provider (the default).</summary>
    /// <remarks>A new instance each time: configuration binding writes into the instances it finds, which must not be shared.</remarks>
    public static ExecutionProvider Cpu => new();

    /// <summary>NVIDIA CUDA (package <c>Microsoft.ML.OnnxRuntime.Gpu</c>).</summary>
    /// <param name="deviceId">The GPU index.</param>
    /// <param name="options">CUDA provider options (see ONNX Runtime's CUDA provider documentation). Where they leave
    /// <c>arena_extend_strategy</c> out, the SDK sets <c>kSameAsRequested</c> (the arena grows by what runs ask for, not by doubling).</param>
    public static ExecutionProvider Cuda(int deviceId = 0, IReadOnlyDictionary<string, string>? options = null) =>
        new() { Name = "CUDA", DeviceId = deviceId, Options = options ?? new Dictionary<string, string>() };

    /// <summary>NVIDIA TensorRT, with CUDA for what TensorRT does not take (package <c>Microsoft.ML.OnnxRuntime.Gpu</c>).</summary>
    /// <param name="deviceId">The GPU index.</param>
    /// <param name="options">TensorRT provider options.</param>
    public static ExecutionProvider TensorRT(int deviceId = 0, IReadOnlyDictionary<string, string>? options = null) =>
        new() { Name = "TensorRT", DeviceId = deviceId, Options = options ?? new Dictionary<string, string>() };

    /// <summary>DirectML on Windows (package <c>Microsoft.ML.OnnxRuntime.DirectML</c>).</summary>
    /// <param name="deviceId">The adapter index.</param>
    public static ExecutionProvider DirectML(int deviceId = 0) => new() { Name = "DirectML", DeviceId = deviceId };

    /// <summary>Apple CoreML (in <c>Microsoft.ML.OnnxRuntime</c> on macOS and iOS).</summary>
    /// <param name="options">CoreML provider options such as <c>ModelFormat</c> = <c>MLProgram</c>.</param>
    public static ExecutionProvider CoreML(IReadOnlyDictionary<string, string>? options = null) =>
        new() { Name = "CoreML", Options = options ?? new Dictionary<string, string>() };

    /// <summary>Intel OpenVINO (package <c>Intel.ML.OnnxRuntime.OpenVino</c>).</summary>
    /// <param name="deviceType">The OpenVINO device, such as <c>CPU</c>, <c>GPU</c> or <c>NPU</c>.</param>
    public static ExecutionProvider OpenVino(string deviceType = "CPU") =>
        new() { Name = "OpenVINO", Options = new Dictionary<string, string> { ["device_type"] = deviceType } };

    /// <summary>AMD ROCm (an ONNX Runtime build with ROCm).</summary>
    /// <param name="deviceId">The GPU index.</param>
    public static ExecutionProvider Rocm(int deviceId = 0) => new() { Name = "ROCm", DeviceId = deviceId };

    /// <summary>
    /// Whether the ONNX Runtime native package the application installed has this provider, so that an application can
    /// offer only what works, or say what to install, before a model loads.
    /// </summary>
    /// <exception cref="ExecutionProviderException">No ONNX Runtime native package is installed (the message names the package to add).</exception>
    public bool IsAvailable
    {
        get
        {
            NativeRuntime.EnsureAvailable();
            return OrtEnv.Instance().GetAvailableProviders().Contains(ExecutionProviderFamily.Of(this).OrtName, StringComparer.OrdinalIgnoreCase);
        }
    }

    /// <inheritdoc />
    public override string ToString() => DeviceId == 0 && Options.Count == 0 ? Name : $"{Name} (device {DeviceId})";
}
