namespace StableDiffusion.Onnx.Builders;

/// <summary>
/// diffusers' <c>Transformer2DModel</c> on continuous inputs, as the UNet's cross-attention blocks use it: group norm
/// (epsilon 1e-6), <c>proj_in</c>, a stack of <c>BasicTransformerBlock</c> (layer norms, self-attention
/// <c>attn1</c>, cross-attention <c>attn2</c>, GEGLU feed-forward <c>ff</c>), <c>proj_out</c>, plus the input.
/// </summary>
/// <param name="Channels">Channels of the image in and out.</param>
/// <param name="Heads">Attention heads.</param>
/// <param name="HeadDim">Width of each head; the blocks work at <c>Heads × HeadDim</c>.</param>
/// <param name="Layers">Transformer blocks (<c>transformer_layers_per_block</c>).</param>
/// <param name="Groups">Groups of the input group norm.</param>
/// <param name="LinearProjection">Whether <c>proj_in</c> and <c>proj_out</c> are linear layers on tokens (<c>use_linear_projection</c>) rather than 1x1 convolutions.</param>
/// <param name="OnlyCrossAttention">Whether <c>attn1</c> attends to the context too (<c>only_cross_attention</c>).</param>
internal sealed record Transformer2D(int Channels, int Heads, int HeadDim, int Layers, int Groups, bool LinearProjection, bool OnlyCrossAttention)
{
    /// <summary>Epsilon of the input group norm (diffusers fixes it).</summary>
    private const float GroupNormEpsilon = 1e-6f;

    /// <summary>Epsilon of the blocks' layer norms (<c>Transformer2DModel</c>'s default <c>norm_eps</c>, which the UNet does not set).</summary>
    private const float LayerNormEpsilon = 1e-5f;

    /// <summary>The width the transformer blocks work at.</summary>
    public int InnerDim => Heads * HeadDim;

    /// <summary>The module's forward in scope <paramref name="name"/>, on images in the flavor's layout, attending to <paramref name="context"/> [N, L, cross_attention_dim].</summary>
    public Value Build(GraphBuilder graph, string name, Value x, Value context)
    {
        using var scope = graph.Scope(name);
        GraphFlavor flavor = graph.Flavor;
        Value h = graph.GroupNorm("norm", x, Groups, Channels, GroupNormEpsilon);
        h = LinearProjection
            ? graph.Linear("proj_in", flavor.ToTokens(h, Channels))
            : flavor.ToTokens(graph.Conv2d("proj_in", h), InnerDim);

        for (int layer = 0; layer < Layers; layer++)
        {
            h = Block(graph, $"transformer_blocks.{layer}", h, context);
        }

        h = LinearProjection
            ? flavor.FromTokens(graph.Linear("proj_out", h), Channels, heightOf: x)
            : graph.Conv2d("proj_out", flavor.FromTokens(h, InnerDim, heightOf: x));
        return graph.ImageResidual(h, x, Channels);
    }

    // BasicTransformerBlock with the "layer_norm" norm type: pre-norm residual attention, cross-attention and feed-forward.
    private Value Block(GraphBuilder graph, string name, Value h, Value context)
    {
        using var scope = graph.Scope(name);
        h = Attend(graph, "attn1", graph.LayerNorm("norm1", h, LayerNormEpsilon), OnlyCrossAttention ? context : null, residual: h);
        h = Attend(graph, "attn2", graph.LayerNorm("norm2", h, LayerNormEpsilon), context, residual: h);
        Value ff = graph.LayerNorm("norm3", h, LayerNormEpsilon);
        using (graph.Scope("ff"))
        {
            using (graph.Scope("net.0"))
            {
                ff = graph.Flavor.GeGlu(graph, ff);
            }

            return graph.Linear("net.2", ff, residual: h);
        }
    }

    // The attention, its output projection, plus the residual.
    private Value Attend(GraphBuilder graph, string name, Value x, Value? context, Value residual)
    {
        using var scope = graph.Scope(name);
        Value attended = graph.Flavor.Attention(graph, x, context, Heads, HeadDim, projectionBias: false);
        return graph.Linear("to_out.0", attended, residual);
    }
}
