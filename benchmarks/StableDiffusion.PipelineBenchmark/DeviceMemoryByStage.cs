using System.Runtime.InteropServices;
using StableDiffusion.Pipelines;

namespace StableDiffusion.Benchmarks;

/// <summary>
/// The GPU memory in use (the whole device: total minus free, as <c>cudaMemGetInfo</c> reads it) with the CUDA context
/// alone, after each component loads (<see cref="ComponentLoadLog"/>), and when each stage of a generation starts and
/// ends, so that a peak can be split between the context, the weights and each model's working memory. The UNet loads
/// beside the other components, so a reading after one of them includes what the UNet's session held by then; after
/// loading, progress is reported synchronously on the generating thread, so each reading is taken between two steps. The
/// benchmark's own: the SDK itself never reads device memory.
/// </summary>
internal sealed unsafe class DeviceMemoryByStage : IProgress<GenerationProgress>
{
    private static readonly Lazy<(nint SetDevice, nint MemGetInfo)?> Runtime = new(Load);
    private readonly Lock _lock = new();
    private readonly int _device;
    private GenerationStage? _last;

    private DeviceMemoryByStage(int device) => _device = device;

    /// <summary>The readings in order: "CUDA context", one per component as it loads, "after load", then one per stage as it
    /// starts, "Completed", and "after the timed runs".</summary>
    public List<KeyValuePair<string, double>> Readings { get; } = [];

    /// <summary>A probe for <paramref name="device"/>, or null where the CUDA runtime cannot be loaded.</summary>
    public static DeviceMemoryByStage? TryCreate(int device) => Runtime.Value is null ? null : new DeviceMemoryByStage(device);

    public void Read(string when)
    {
        (nint setDevice, nint memGetInfo) = Runtime.Value!.Value;
        nuint free, total;
        if (((delegate* unmanaged<int, int>)setDevice)(_device) == 0 && ((delegate* unmanaged<nuint*, nuint*, int>)memGetInfo)(&free, &total) == 0)
        {
            lock (_lock)
            {
                Readings.Add(new(when, (total - free) / 1048576.0));
            }
        }
    }

    public void Report(GenerationProgress value)
    {
        if (value.Stage != _last)
        {
            _last = value.Stage;
            Read(value.Stage.ToString());
        }
    }

    private static (nint, nint)? Load()
    {
        foreach (string name in (string[])["libcudart.so.13", "libcudart.so.12", "libcudart.so"])
        {
            if (NativeLibrary.TryLoad(name, out nint library)
                && NativeLibrary.TryGetExport(library, "cudaSetDevice", out nint setDevice)
                && NativeLibrary.TryGetExport(library, "cudaMemGetInfo", out nint memGetInfo))
            {
                return (setDevice, memGetInfo);
            }
        }

        return null;
    }
}
