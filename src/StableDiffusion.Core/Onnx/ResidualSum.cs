namespace StableDiffusion.Onnx;

/// <summary>
/// A residual connection's sum as <see cref="GraphBuilder.Residual"/> added it: its terms, the name of its value, and the
/// nodes that compute it until a normalization's fused operator takes it over (<see cref="GraphBuilder.TakeResidual"/>).
/// </summary>
/// <param name="Input">The branch's output.</param>
/// <param name="Skip">What the branch adds to (the same shape, or per channel over images).</param>
/// <param name="Bias">The branch's last bias over the last axis, or null.</param>
/// <param name="Name">The sum's value.</param>
/// <param name="Nodes">The nodes that add it.</param>
internal sealed record ResidualSum(Value Input, Value Skip, Value? Bias, string Name, IReadOnlyList<NodeProto> Nodes);
