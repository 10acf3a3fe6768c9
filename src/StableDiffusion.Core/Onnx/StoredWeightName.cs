namespace StableDiffusion.Onnx;

/// <summary>
/// Where a weight the model asks for is stored in a file with another key layout (the original Stable Diffusion
/// checkpoints' names for diffusers' modules).
/// </summary>
/// <param name="FileKey">The tensor's name in the file.</param>
/// <param name="AsMatrix">
/// Whether the file stores a linear layer's weight [out, in] as a 1x1 convolution's [out, in, 1, 1]: the model sees the
/// same elements as the matrix.
/// </param>
internal readonly record struct StoredWeightName(string FileKey, bool AsMatrix = false);
