using Microsoft.ML.OnnxRuntime;

namespace StableDiffusion.ExecutionProviders.Families;

/// <summary>AMD ROCm.</summary>
internal sealed class RocmProvider() : ExecutionProviderFamily("ROCMExecutionProvider", ["ROCm"], "an ONNX Runtime build with ROCm (no official NuGet package)")
{
    public override void Append(SessionOptions options, ExecutionProvider provider)
    {
        using var rocm = new OrtROCMProviderOptions();
        rocm.UpdateOptions(WithDevice(provider));
        options.AppendExecutionProvider_ROCm(rocm);
    }
}
