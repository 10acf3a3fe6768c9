using Microsoft.ML.OnnxRuntime;

namespace StableDiffusion.ExecutionProviders;

/// <summary>
/// A provider's device memory as IOBinding uses it: the memory info ONNX Runtime allocates bound tensors with, and the
/// copies between them and pinned host buffers (ONNX Runtime's managed API has none for providers appended the classic
/// way, so each family that binds device memory brings its own). One per model, for the model's lifetime.
/// </summary>
internal abstract class DeviceMemory : IDisposable
{
    /// <summary>Where bound tensors are allocated.</summary>
    public abstract OrtMemoryInfo MemoryInfo { get; }

    /// <summary>Copies <paramref name="bytes"/> from pinned host memory to the device.</summary>
    public abstract void CopyToDevice(nint device, nint host, long bytes);

    /// <summary>Copies <paramref name="bytes"/> from the device to pinned host memory; the device's work is complete when it returns.</summary>
    public abstract void CopyToHost(nint host, nint device, long bytes);

    /// <summary>Page-locks host memory that is copied every step, so copies go straight to the device; false where that
    /// cannot be done (copies still work, staged).</summary>
    public virtual bool TryPinHost(nint host, long bytes) => false;

    /// <summary>Undoes <see cref="TryPinHost"/>.</summary>
    public virtual void UnpinHost(nint host)
    {
    }

    /// <summary>Releases the memory info.</summary>
    public abstract void Dispose();
}
