namespace StableDiffusion.Pipelines;

/// <summary>
/// The floating-point type that graphs built from diffusers weights compute in (diffusers' <c>torch_dtype</c>). Weights
/// stored in another type are converted once when the session is created. ONNX exports keep the types they were exported with.
/// </summary>
public enum ComputePrecision
{
    /// <summary>Single precision (<c>torch.float32</c>): the default on the CPU, and what reproduces diffusers' float32 images.</summary>
    Float32,

    /// <summary>Half precision (<c>torch.float16</c>): the default on CUDA, where the fused operators run in it; half the memory.</summary>
    Float16,
}
