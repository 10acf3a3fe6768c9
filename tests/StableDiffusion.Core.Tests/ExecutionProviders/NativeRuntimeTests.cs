using StableDiffusion.ExecutionProviders;
using Xunit;

namespace StableDiffusion.Core.Tests.ExecutionProviders;

/// <summary>
/// Without a native ONNX Runtime package the first ONNX Runtime call fails inside its type initializer; the SDK turns that
/// into an exception naming the package to add. (The package smoke test runs an application without the native package.)
/// </summary>
[Trait("Area", "ExecutionProviders")]
public sealed class NativeRuntimeTests
{
    [Fact]
    public void AMissingLibrary_InsideATypeInitializer_IsRecognised_AndNamesThePackages()
    {
        var missing = new TypeInitializationException("Microsoft.ML.OnnxRuntime.NativeMethods",
            new DllNotFoundException("Unable to load shared library 'onnxruntime' or one of its dependencies."));

        ExecutionProviderException error = NativeRuntime.Missing(missing);

        Assert.True(NativeRuntime.IsMissingLibrary(missing));
        Assert.StartsWith("ONNX Runtime's native library (onnxruntime) could not be loaded: ", error.Message, StringComparison.Ordinal);
        Assert.Contains("Add Microsoft.ML.OnnxRuntime for the CPU (dotnet add package Microsoft.ML.OnnxRuntime --version 1.", error.Message, StringComparison.Ordinal);
        Assert.Contains("or Microsoft.ML.OnnxRuntime.Gpu for CUDA", error.Message, StringComparison.Ordinal);
        Assert.EndsWith("(DllNotFoundException: Unable to load shared library 'onnxruntime' or one of its dependencies.)", error.Message, StringComparison.Ordinal);
        Assert.Same(missing, error.InnerException);
        Assert.IsAssignableFrom<StableDiffusionException>(error);
    }

    [Fact]
    public void OtherFailures_AreNotTakenForAMissingLibrary()
    {
        Assert.False(NativeRuntime.IsMissingLibrary(new TypeInitializationException("X", new InvalidOperationException("other"))));
    }

    [Fact]
    public void WithTheNativePackage_TheCheckPasses()
    {
        NativeRuntime.EnsureAvailable();
    }
}
