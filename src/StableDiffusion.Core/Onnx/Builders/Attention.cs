namespace StableDiffusion.Onnx.Builders;

/// <summary>
/// Scaled dot-product attention as plain ONNX operators or as ONNX Runtime's fused operator, and the single-head
/// self-attention of the VAE's mid block
/// (diffusers' <c>Attention</c> with a group norm and a residual connection).
/// </summary>
internal static class Attention
{
    /// <summary>
    /// <c>softmax(q kᵀ / sqrt(d) + mask) v</c> for q [B, Lq, heads·d], k and v [B, Lk, heads·d]; returns [B, Lq, heads·d].
    /// The optional mask broadcasts to [B, heads, Lq, Lk] (a causal mask is [Lq, Lk], -inf above the diagonal).
    /// </summary>
    public static Value ScaledDotProduct(Value query, Value key, Value value, int heads, int headDim, Value? mask = null)
    {
        Value q = query.Reshape(0, -1, heads, headDim).Transpose(0, 2, 1, 3);
        Value kT = key.Reshape(0, -1, heads, headDim).Transpose(0, 2, 3, 1);
        Value v = value.Reshape(0, -1, heads, headDim).Transpose(0, 2, 1, 3);
        Value scores = q.MatMul(kT) * (1f / MathF.Sqrt(headDim));
        Value probabilities = (mask is null ? scores : scores + mask).Softmax();
        return probabilities.MatMul(v).Transpose(0, 2, 1, 3).Reshape(0, -1, heads * headDim);
    }

    /// <summary>
    /// ONNX Runtime's <c>MultiHeadAttention</c> over <paramref name="heads"/> heads: <paramref name="query"/>,
    /// <paramref name="key"/> and <paramref name="value"/> [B, L, heads·d], or packed QKV [B, L, heads, 3, d] alone, or a
    /// query with packed KV [B, L, heads, 2, d] as <paramref name="key"/>; <paramref name="bias"/> is the three projections'
    /// biases concatenated [3·heads·d], which the operator adds as it splits the heads.
    /// </summary>
    public static Value MultiHead(int heads, Value query, Value? key = null, Value? value = null, Value? bias = null)
    {
        Value?[] inputs = [query, key, value, bias];
        int count = Array.FindLastIndex(inputs, input => input is not null) + 1;
        return query.Graph.Node("MultiHeadAttention", inputs[..count], domain: GraphBuilder.MicrosoftDomain, attributes: ("num_heads", (long)heads));
    }

    /// <summary>
    /// The VAE's attention block on images (in the graph flavor's layout): group norm, one head of width C over the H·W positions
    /// (<c>to_q</c>, <c>to_k</c>, <c>to_v</c>, <c>to_out.0</c>), plus the input.
    /// </summary>
    public static Value SpatialSelfAttention(this GraphBuilder graph, string name, Value x, int channels, int groups, float epsilon)
    {
        using var scope = graph.Scope(name);
        Value h = graph.Flavor.ToTokens(graph.GroupNorm("group_norm", x, groups, channels, epsilon), channels);
        Value attended = graph.Linear("to_out.0", graph.Flavor.Attention(graph, h, context: null, heads: 1, headDim: channels, projectionBias: true));
        return graph.ImageResidual(graph.Flavor.FromTokens(attended, channels, heightOf: x), x, channels);
    }
}
