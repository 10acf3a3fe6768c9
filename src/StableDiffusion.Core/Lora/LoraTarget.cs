namespace StableDiffusion.Lora;

/// <summary>
/// The weight of one layer of a graph that a LoRA can change: its module path (as in diffusers) and the initializers that
/// hold it (more than one when a built graph views the same stored weight in several shapes).
/// </summary>
/// <param name="Module">The module path, such as <c>down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q</c>.</param>
/// <param name="Initializers">The initializers holding the weight, all with the same elements in the same order.</param>
/// <param name="ElementType">Their element type.</param>
/// <param name="Shape">The shape of the first.</param>
/// <param name="Transposed">Whether the elements are stored [in, out] (an exporter's MatMul) rather than PyTorch's [out, in, ...].</param>
/// <param name="SharedWith">Another module the same initializer also serves (an exporter deduplicated equal weights), or null.</param>
internal sealed record LoraTarget(string Module, IReadOnlyList<string> Initializers, TensorElementType ElementType, long[] Shape, bool Transposed, string? SharedWith)
{
    /// <summary>The number of elements.</summary>
    public long ElementCount => Shape.Aggregate(1L, (count, d) => count * d);
}
