using Microsoft.ML.OnnxRuntime;

namespace StableDiffusion.ExecutionProviders;

/// <summary>Turns <see cref="SessionSettings"/> into ONNX Runtime <see cref="SessionOptions"/>: the settings every session
/// shares, then the provider's own (<see cref="ExecutionProviderFamily.Append"/>).</summary>
internal static class SessionOptionsFactory
{
    public static SessionOptions Create(SessionSettings settings, string component)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ExecutionProviderFamily family = ExecutionProviderFamily.Of(settings.ExecutionProvider);
        if (settings.EnableMemoryPattern == false && family.CapturesGraphs(settings.ExecutionProvider))
        {
            throw new ExecutionProviderException(
                $"The {component} session captures a graph ({family.GraphCaptureOption}) but SessionSettings.EnableMemoryPattern is false: the capture run " +
                "must not allocate device memory, and only the memory pattern reserves it beforehand. Leave EnableMemoryPattern unset (or true) for this session, or turn graph capture off.");
        }

        var options = new SessionOptions();
        try
        {
            options.LogId = component;
            options.GraphOptimizationLevel = settings.GraphOptimizationLevel;
            options.EnableCpuMemArena = settings.EnableMemoryArena;
            options.EnableMemoryPattern = settings.PlansMemory;
            string spinning = settings.Spins ? "1" : "0";
            options.AddSessionConfigEntry("session.intra_op.allow_spinning", spinning);
            options.AddSessionConfigEntry("session.inter_op.allow_spinning", spinning);
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

    private static void AppendProvider(SessionOptions options, ExecutionProvider provider, string component)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(provider.Name, nameof(provider));
        ExecutionProviderFamily family = ExecutionProviderFamily.Of(provider);
        if (!provider.IsAvailable)
        {
            throw new ExecutionProviderException(
                $"The execution provider '{provider.Name}' requested for {component} is not in the installed ONNX Runtime native package " +
                $"(it has: {string.Join(", ", OrtEnv.Instance().GetAvailableProviders())}). Add a reference to {family.Package} in your application, or choose another provider.");
        }

        try
        {
            family.Append(options, provider);
        }
        catch (Exception ex) when (ex is OnnxRuntimeException or EntryPointNotFoundException or DllNotFoundException)
        {
            throw new ExecutionProviderException(
                $"The execution provider '{provider}' could not be set up for {component}: {ex.Message}. " +
                $"Check that {family.Package} is referenced and that its native dependencies (drivers, CUDA/cuDNN) are installed.", ex);
        }
    }
}
