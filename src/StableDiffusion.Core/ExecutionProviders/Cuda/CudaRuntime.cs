using System.Runtime.InteropServices;

namespace StableDiffusion.ExecutionProviders.Cuda;

/// <summary>
/// The few CUDA runtime calls that binding in CUDA device memory needs: copying a step's inputs into the bound device
/// buffers and the prediction back, from page-locked host memory. ONNX Runtime's managed API has no copy into an existing
/// device tensor for providers appended the classic way, so the CUDA runtime that the CUDA provider itself loads is called directly.
/// </summary>
internal static unsafe class CudaRuntime
{
    private const int HostToDevice = 1;
    private const int DeviceToHost = 2;

    private static readonly Lazy<Functions?> Loaded = new(Load);

    /// <summary>Whether the CUDA runtime library could be loaded.</summary>
    public static bool IsAvailable => Loaded.Value is not null;

    public static void CopyToDevice(int device, nint destination, nint source, long bytes) => Copy(device, destination, source, bytes, HostToDevice);

    public static void CopyToHost(int device, nint destination, nint source, long bytes) => Copy(device, destination, source, bytes, DeviceToHost);

    /// <summary>Page-locks host memory (which must not move: the buffers live on the pinned object heap) so copies to and
    /// from it go straight to the device; false where the driver refuses, and copies then simply take the staged path.</summary>
    public static bool TryRegisterHost(nint memory, long bytes) => Loaded.Value is { } f && f.HostRegister(memory, (nuint)bytes, 0) == 0;

    /// <summary>Undoes <see cref="TryRegisterHost"/>.</summary>
    public static void UnregisterHost(nint memory) => Loaded.Value?.HostUnregister(memory);

    private static void Copy(int device, nint destination, nint source, long bytes, int kind)
    {
        Functions functions = Loaded.Value ?? throw new InvalidOperationException("The CUDA runtime library (libcudart) could not be loaded.");
        Check(functions.SetDevice(device), "cudaSetDevice");
        Check(functions.Memcpy(destination, source, (nuint)bytes, kind), "cudaMemcpy");
    }

    private static void Check(int error, string call)
    {
        if (error != 0)
        {
            throw new InvalidOperationException($"{call} failed with CUDA error {error}.");
        }
    }

    private static Functions? Load()
    {
        string[] candidates = OperatingSystem.IsWindows()
            ? ["cudart64_13.dll", "cudart64_12.dll", "cudart64_110.dll"]
            : ["libcudart.so.13", "libcudart.so.12", "libcudart.so"];
        foreach (string name in candidates)
        {
            if (NativeLibrary.TryLoad(name, out nint library)
                && NativeLibrary.TryGetExport(library, "cudaMemcpy", out nint memcpy)
                && NativeLibrary.TryGetExport(library, "cudaSetDevice", out nint setDevice)
                && NativeLibrary.TryGetExport(library, "cudaHostRegister", out nint hostRegister)
                && NativeLibrary.TryGetExport(library, "cudaHostUnregister", out nint hostUnregister))
            {
                return new Functions(
                    (delegate* unmanaged<nint, nint, nuint, int, int>)memcpy,
                    (delegate* unmanaged<int, int>)setDevice,
                    (delegate* unmanaged<nint, nuint, uint, int>)hostRegister,
                    (delegate* unmanaged<nint, int>)hostUnregister);
            }
        }

        return null;
    }

    private sealed class Functions(
        delegate* unmanaged<nint, nint, nuint, int, int> memcpy,
        delegate* unmanaged<int, int> setDevice,
        delegate* unmanaged<nint, nuint, uint, int> hostRegister,
        delegate* unmanaged<nint, int> hostUnregister)
    {
        public int Memcpy(nint destination, nint source, nuint bytes, int kind) => memcpy(destination, source, bytes, kind);

        public int SetDevice(int device) => setDevice(device);

        public int HostRegister(nint memory, nuint bytes, uint flags) => hostRegister(memory, bytes, flags);

        public int HostUnregister(nint memory) => hostUnregister(memory);
    }
}
