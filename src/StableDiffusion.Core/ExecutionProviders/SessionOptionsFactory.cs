using Microsoft.ML.OnnxRuntime;

namespace StableDiffusion.ExecutionProviders;

/// <summary>Turns <see cref="SessionSettings"/> into ONNX Runtime <see cref="SessionOptions"/>, one place for every provider.</summary>
internal static class SessionOptionsFactory
{
    private sealed record ProviderInfo(string OrtName, string Package);

    // Our names (and ONNX Runtime's) -> ONNX Runtime's provider name and the native package that carries it.
    private static readonly Dictionary<string, ProviderInfo> Known = new(StringComparer.OrdinalIgnoreCase)
    {
        ["CPU"] = new("CPUExecutionProvider", "Microsoft.ML.OnnxRuntime"),
        ["CUDA"] = new("CUDAExecutionProvider", "Microsoft.ML.OnnxRuntime.Gpu (or .Gpu.Linux / .Gpu.Windows), with CUDA and cuDNN 9 installed"),
        ["TensorRT"] = new("TensorrtExecutionProvider", "Microsoft.ML.OnnxRuntime.Gpu (or .Gpu.Linux / .Gpu.Windows), with CUDA, cuDNN 9 and TensorRT 10 installed"),
        ["DirectML"] = new("DmlExecutionProvider", "Microsoft.ML.OnnxRuntime.DirectML (Windows)"),
        ["DML"] = new("DmlExecutionProvider", "Microsoft.ML.OnnxRuntime.DirectML (Windows)"),
        ["CoreML"] = new("CoreMLExecutionProvider", "Microsoft.ML.OnnxRuntime (its macOS and iOS native libraries include CoreML)"),
        ["OpenVINO"] = new("OpenVINOExecutionProvider", "Intel.ML.OnnxRuntime.OpenVino"),
        ["ROCm"] = new("ROCMExecutionProvider", "an ONNX Runtime build with ROCm (no official NuGet package)"),
    };

    public static SessionOptions Create(SessionSettings settings, string component)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var options = new SessionOptions();
        try
        {
            options.LogId = component;
            options.GraphOptimizationLevel = settings.GraphOptimizationLevel;
            options.EnableCpuMemArena = settings.EnableMemoryArena;
            options.EnableMemoryPattern = settings.EnableMemoryPattern;
            options.AddSessionConfigEntry("session.intra_op.allow_spinning", settings.AllowSpinning ? "1" : "0");
            options.AddSessionConfigEntry("session.inter_op.allow_spinning", settings.AllowSpinning ? "1" : "0");
            if (settings.IntraOpNumThreads is int intra)
            {
                options.IntraOpNumThreads = intra;
            }

            if (settings.InterOpNumThreads is int inter)
            {
                options.InterOpNumThreads = inter;
            }

            foreach (var (dimension, size) in settings.FreeDimensionOverrides)
            {
                options.AddFreeDimensionOverrideByName(dimension, size);
            }

            AppendProvider(options, settings.ExecutionProvider, component);
            return options;
        }
        catch
        {
            options.Dispose();
            throw;
        }
    }

    /// <summary>ONNX Runtime's name for a provider given by our name or its own, in any case (as typed when unknown).</summary>
    public static string OrtName(ExecutionProvider provider) => Resolve(provider.Name).OrtName;

    /// <summary>
    /// ONNX Runtime's name and, for a known provider, its package: <paramref name="name"/> is one of our names or ONNX
    /// Runtime's, in any case; an unknown name is returned as typed.
    /// </summary>
    private static (string OrtName, ProviderInfo? Info) Resolve(string name)
    {
        if (Known.TryGetValue(name, out ProviderInfo? info)
            || (info = Known.Values.FirstOrDefault(k => string.Equals(k.OrtName, name, StringComparison.OrdinalIgnoreCase))) is not null)
        {
            return (info.OrtName, info);
        }

        return (name, null);
    }

    private static void AppendProvider(SessionOptions options, ExecutionProvider provider, string component)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(provider.Name, nameof(provider));
        (string ortName, ProviderInfo? info) = Resolve(provider.Name);

        string[] available = OrtEnv.Instance().GetAvailableProviders();
        if (!available.Contains(ortName, StringComparer.OrdinalIgnoreCase))
        {
            string package = info is null ? "an ONNX Runtime native package that includes it" : info.Package;
            throw new ExecutionProviderException(
                $"The execution provider '{provider.Name}' requested for {component} is not in the installed ONNX Runtime native package " +
                $"(it has: {string.Join(", ", available)}). Add a reference to {package} in your application, or choose another provider.");
        }

        try
        {
            switch (ortName)
            {
                case "CPUExecutionProvider":
                    break; // ONNX Runtime always has the CPU provider last in line.
                case "CUDAExecutionProvider":
                    using (var cuda = new OrtCUDAProviderOptions())
                    {
                        cuda.UpdateOptions(WithDevice(provider));
                        options.AppendExecutionProvider_CUDA(cuda);
                    }

                    break;
                case "TensorrtExecutionProvider":
                    using (var tensorRt = new OrtTensorRTProviderOptions())
                    {
                        tensorRt.UpdateOptions(WithDevice(provider));
                        options.AppendExecutionProvider_Tensorrt(tensorRt);
                    }

                    // What TensorRT does not take runs on CUDA rather than the CPU.
                    options.AppendExecutionProvider_CUDA(provider.DeviceId);
                    break;
                case "DmlExecutionProvider":
                    // DirectML requires these (ONNX Runtime's DirectML documentation).
                    options.EnableMemoryPattern = false;
                    options.ExecutionMode = ExecutionMode.ORT_SEQUENTIAL;
                    options.AppendExecutionProvider_DML(provider.DeviceId);
                    break;
                case "ROCMExecutionProvider":
                    using (var rocm = new OrtROCMProviderOptions())
                    {
                        rocm.UpdateOptions(WithDevice(provider));
                        options.AppendExecutionProvider_ROCm(rocm);
                    }

                    break;
                default:
                    // CoreML, OpenVINO and any other provider by name, with its options as given.
                    options.AppendExecutionProvider(ortName.Replace("ExecutionProvider", string.Empty, StringComparison.Ordinal), new Dictionary<string, string>(provider.Options));
                    break;
            }
        }
        catch (Exception ex) when (ex is OnnxRuntimeException or EntryPointNotFoundException or DllNotFoundException)
        {
            throw new ExecutionProviderException(
                $"The execution provider '{provider}' could not be set up for {component}: {ex.Message}. " +
                $"Check that {info?.Package ?? "its native package"} is referenced and that its native dependencies (drivers, CUDA/cuDNN) are installed.", ex);
        }
    }

    private static Dictionary<string, string> WithDevice(ExecutionProvider provider)
    {
        var values = new Dictionary<string, string>(provider.Options) { ["device_id"] = provider.DeviceId.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        return values;
    }
}
