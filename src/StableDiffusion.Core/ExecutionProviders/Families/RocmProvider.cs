using Microsoft.ML.OnnxRuntime;

namespace StableDiffusion.ExecutionProviders.Families;

/// <summary>AMD ROCm.</summary>
internal sealed class RocmProvider : ExecutionProviderFamily
{
    public override string OrtName => "ROCMExecutionProvider";

    public override IReadOnlyList<string> Names { get; } = ["ROCm"];

    public override string Package => "an ONNX Runtime build with ROCm (no official NuGet package)";

    public override void Append(SessionOptions options, ExecutionProvider provider)
    {
        using var rocm = new OrtROCMProviderOptions();
        rocm.UpdateOptions(WithDevice(provider));
        options.AppendExecutionProvider_ROCm(rocm);
    }
}
