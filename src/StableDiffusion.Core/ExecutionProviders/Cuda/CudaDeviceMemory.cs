using Microsoft.ML.OnnxRuntime;

namespace StableDiffusion.ExecutionProviders.Cuda;

/// <summary>CUDA device memory on one GPU (the CUDA and TensorRT providers), copied to and from through the CUDA runtime.</summary>
internal sealed class CudaDeviceMemory(int deviceId) : DeviceMemory
{
    public override OrtMemoryInfo MemoryInfo { get; } = new(OrtMemoryInfo.allocatorCUDA, OrtAllocatorType.DeviceAllocator, deviceId, OrtMemType.Default);

    // cudaMemcpy waits for the device, and ONNX Runtime synchronises its stream before a run returns, so the copies are ordered.
    public override void CopyToDevice(nint device, nint host, long bytes) => CudaRuntime.CopyToDevice(deviceId, device, host, bytes);

    public override void CopyToHost(nint host, nint device, long bytes) => CudaRuntime.CopyToHost(deviceId, host, device, bytes);

    public override bool TryPinHost(nint host, long bytes) => CudaRuntime.TryRegisterHost(host, bytes);

    public override void UnpinHost(nint host) => CudaRuntime.UnregisterHost(host);

    public override void Dispose() => MemoryInfo.Dispose();
}
