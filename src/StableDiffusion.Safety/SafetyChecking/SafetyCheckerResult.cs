using System.Numerics.Tensors;

namespace StableDiffusion.Safety;

/// <summary>What <see cref="SafetyChecker"/> returns: the images with every flagged one blacked out, and the flags.</summary>
/// <param name="Images">
/// The checked images, NHWC floats in [0, 1] of the input's shape: unflagged images unchanged, flagged images all zeros
/// (black), as diffusers' <c>out_images</c>.
/// </param>
/// <param name="HasNsfwConcepts">One flag per image, true where the checker found NSFW content (diffusers' <c>has_nsfw_concepts</c>).</param>
public sealed record SafetyCheckerResult(Tensor<float> Images, IReadOnlyList<bool> HasNsfwConcepts);
