namespace StableDiffusion.ExecutionProviders.Families;

/// <summary>Apple CoreML, configured by its provider options (such as <c>ModelFormat</c>), appended by name.</summary>
internal sealed class CoreMLProvider()
    : ExecutionProviderFamily("CoreMLExecutionProvider", ["CoreML"], "Microsoft.ML.OnnxRuntime (its macOS and iOS native libraries include CoreML)");
