namespace StableDiffusion.ExecutionProviders.Families;

/// <summary>A provider the SDK has no family for (QNN, XNNPACK, ...), appended by its ONNX Runtime name with its options as given.</summary>
/// <param name="ortName">The name as given.</param>
internal sealed class NamedProvider(string ortName) : ExecutionProviderFamily(ortName, [], "an ONNX Runtime native package that includes it");
