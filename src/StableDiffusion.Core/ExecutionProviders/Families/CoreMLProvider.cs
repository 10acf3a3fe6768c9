using Microsoft.ML.OnnxRuntime;

namespace StableDiffusion.ExecutionProviders.Families;

/// <summary>Apple CoreML, configured by its provider options (such as <c>ModelFormat</c>).</summary>
internal sealed class CoreMLProvider : ExecutionProviderFamily
{
    public override string OrtName => "CoreMLExecutionProvider";

    public override IReadOnlyList<string> Names { get; } = ["CoreML"];

    public override string Package => "Microsoft.ML.OnnxRuntime (its macOS and iOS native libraries include CoreML)";

    public override void Append(SessionOptions options, ExecutionProvider provider) => AppendByName(options, provider);
}
