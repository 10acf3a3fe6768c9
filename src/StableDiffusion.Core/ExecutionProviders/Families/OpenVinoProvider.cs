using Microsoft.ML.OnnxRuntime;

namespace StableDiffusion.ExecutionProviders.Families;

/// <summary>Intel OpenVINO, configured by its provider options (<c>device_type</c>: CPU, GPU or NPU).</summary>
internal sealed class OpenVinoProvider : ExecutionProviderFamily
{
    public override string OrtName => "OpenVINOExecutionProvider";

    public override IReadOnlyList<string> Names { get; } = ["OpenVINO"];

    public override string Package => "Intel.ML.OnnxRuntime.OpenVino";

    public override void Append(SessionOptions options, ExecutionProvider provider) => AppendByName(options, provider);
}
