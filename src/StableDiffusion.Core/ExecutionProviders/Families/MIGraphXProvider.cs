using Microsoft.ML.OnnxRuntime;

namespace StableDiffusion.ExecutionProviders.Families;

/// <summary>AMD MIGraphX (the graph compiler for AMD GPUs), on one device; ONNX Runtime's managed call takes no other option.</summary>
internal sealed class MIGraphXProvider()
    : ExecutionProviderFamily("MIGraphXExecutionProvider", ["MIGraphX"], "an ONNX Runtime build with MIGraphX (no official NuGet package)")
{
    public override void Append(SessionOptions options, ExecutionProvider provider)
    {
        if (provider.Options.Count > 0)
        {
            throw new ExecutionProviderException(
                $"The MIGraphX provider takes a device id only; remove its options ({string.Join(", ", provider.Options.Keys)}) or set them through StableDiffusionPipelineOptions.ConfigureSessionOptions.");
        }

        options.AppendExecutionProvider_MIGraphX(provider.DeviceId);
    }
}
