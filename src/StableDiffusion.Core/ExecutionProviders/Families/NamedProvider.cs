using Microsoft.ML.OnnxRuntime;

namespace StableDiffusion.ExecutionProviders.Families;

/// <summary>A provider the SDK has no family for (QNN, XNNPACK, ...), appended by its ONNX Runtime name with its options as given.</summary>
internal sealed class NamedProvider(string ortName) : ExecutionProviderFamily
{
    public override string OrtName => ortName;

    public override IReadOnlyList<string> Names => [];

    public override string Package => "an ONNX Runtime native package that includes it";

    public override void Append(SessionOptions options, ExecutionProvider provider) => AppendByName(options, provider);
}
