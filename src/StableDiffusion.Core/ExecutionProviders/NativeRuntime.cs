using System.Reflection;
using Microsoft.ML.OnnxRuntime;

namespace StableDiffusion.ExecutionProviders;

/// <summary>
/// Checks that ONNX Runtime's native library can be loaded before anything is downloaded or read. The packages reference
/// only ONNX Runtime's managed package; without a native package the first ONNX Runtime call fails deep inside with a
/// <see cref="TypeInitializationException"/> or <see cref="DllNotFoundException"/> that names no package.
/// </summary>
internal static class NativeRuntime
{
    /// <summary>Loads the native library, or throws an exception naming the package to add.</summary>
    /// <exception cref="ExecutionProviderException">The native library cannot be loaded.</exception>
    public static void EnsureAvailable()
    {
        try
        {
            _ = OrtEnv.Instance();
        }
        catch (Exception ex) when (IsMissingLibrary(ex))
        {
            throw Missing(ex);
        }
    }

    /// <summary>Whether <paramref name="error"/> (or an exception inside it) says the native library is missing or unusable.</summary>
    internal static bool IsMissingLibrary(Exception error)
    {
        for (Exception? e = error; e is not null; e = e.InnerException)
        {
            if (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
            {
                return true;
            }
        }

        return false;
    }

    internal static ExecutionProviderException Missing(Exception error)
    {
        // The loader's message lists every path it tried, one per line: the first line says enough.
        Exception cause = error.GetBaseException();
        string version = typeof(OrtEnv).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "the same version";
        return new ExecutionProviderException(
            "ONNX Runtime's native library (onnxruntime) could not be loaded: StableDiffusion references only ONNX Runtime's managed package, " +
            $"and your application chooses the native one. Add Microsoft.ML.OnnxRuntime for the CPU (dotnet add package Microsoft.ML.OnnxRuntime --version {version}), " +
            "or Microsoft.ML.OnnxRuntime.Gpu for CUDA, at the version of Microsoft.ML.OnnxRuntime.Managed. " +
            $"({cause.GetType().Name}: {cause.Message.Split('\n')[0].Trim()})",
            error);
    }
}
