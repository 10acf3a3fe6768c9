using Microsoft.ML.OnnxRuntime;

namespace StableDiffusion.ExecutionProviders.Families;

/// <summary>ONNX Runtime's CPU provider: always present, and always last in line for what other providers do not take.</summary>
internal sealed class CpuProvider() : ExecutionProviderFamily("CPUExecutionProvider", ["CPU"], "Microsoft.ML.OnnxRuntime")
{
    public override void Append(SessionOptions options, ExecutionProvider provider)
    {
        // Nothing to append: a session without another provider runs on the CPU.
    }
}
