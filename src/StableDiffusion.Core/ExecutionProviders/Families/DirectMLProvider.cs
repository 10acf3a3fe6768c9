using Microsoft.ML.OnnxRuntime;

namespace StableDiffusion.ExecutionProviders.Families;

/// <summary>DirectML on Windows (any DirectX 12 GPU).</summary>
internal sealed class DirectMLProvider() : ExecutionProviderFamily("DmlExecutionProvider", ["DirectML", "DML"], "Microsoft.ML.OnnxRuntime.DirectML (Windows)")
{
    public override bool PlansMemoryByDefault(ExecutionProvider provider) => false;

    public override void Append(SessionOptions options, ExecutionProvider provider)
    {
        // DirectML requires these (ONNX Runtime's DirectML documentation).
        options.EnableMemoryPattern = false;
        options.ExecutionMode = ExecutionMode.ORT_SEQUENTIAL;
        options.AppendExecutionProvider_DML(provider.DeviceId);
    }
}
