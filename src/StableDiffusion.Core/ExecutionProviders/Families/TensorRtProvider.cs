using Microsoft.ML.OnnxRuntime;

namespace StableDiffusion.ExecutionProviders.Families;

/// <summary>NVIDIA TensorRT, with CUDA for what TensorRT does not take: CUDA memory, a device thread and CUDA graphs
/// (its own option, <c>trt_cuda_graph_enable</c>), as for <see cref="CudaProvider"/>.</summary>
internal sealed class TensorRtProvider() : CudaProvider("TensorrtExecutionProvider", ["TensorRT"],
    "Microsoft.ML.OnnxRuntime.Gpu (or .Gpu.Linux / .Gpu.Windows), with CUDA, cuDNN 9 and TensorRT 10 installed")
{
    public override string? GraphCaptureOption => "trt_cuda_graph_enable";

    public override void Append(SessionOptions options, ExecutionProvider provider)
    {
        using (var tensorRt = new OrtTensorRTProviderOptions())
        {
            tensorRt.UpdateOptions(WithDevice(provider));
            options.AppendExecutionProvider_Tensorrt(tensorRt);
        }

        // What TensorRT does not take runs on CUDA rather than the CPU.
        options.AppendExecutionProvider_CUDA(provider.DeviceId);
    }
}
