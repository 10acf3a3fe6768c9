namespace StableDiffusion.Onnx.Builders;

/// <summary>
/// diffusers' <c>Timesteps</c> (the sinusoidal projection <c>time_proj</c>) and the width of the <c>TimestepEmbedding</c> after it.
/// </summary>
/// <param name="Channels">Width of the projection (<c>block_out_channels[0]</c>).</param>
/// <param name="FlipSinToCos">Whether the cosines come first (<c>flip_sin_to_cos</c>).</param>
/// <param name="FreqShift">Subtracted from half the width in the frequency exponent's denominator (<c>freq_shift</c>).</param>
/// <param name="EmbeddingDim">Width of the time embedding (<c>time_embedding_dim</c>, by default four times <paramref name="Channels"/>).</param>
internal sealed record TimestepProjection(int Channels, bool FlipSinToCos, float FreqShift, int EmbeddingDim)
{
    /// <summary>The largest period of the sinusoids (diffusers' <c>max_period</c>).</summary>
    private const double MaxPeriod = 10000;

    /// <summary>
    /// The frequencies <c>exp(-ln(10000) · i / (Channels / 2 - FreqShift))</c>, computed step by step in float32 as PyTorch
    /// does (each product and quotient rounded to float32), with the exponential correctly rounded, which gives PyTorch's
    /// float32 values.
    /// </summary>
    public float[] Frequencies()
    {
        int half = Channels / 2;
        float scale = (float)-Math.Log(MaxPeriod);
        float denominator = (float)(half - (double)FreqShift);
        return [.. Enumerable.Range(0, half).Select(i => (float)Math.Exp(scale * i / denominator))];
    }

    /// <summary>
    /// Projects timesteps [N] (float32, fractional ones included) to [N, Channels] in float32: the sines and cosines of
    /// <c>t · frequency</c>, in the order the configuration says, zero-padded to an odd width.
    /// </summary>
    public Value Embed(GraphBuilder graph, Value timesteps)
    {
        using var scope = graph.Scope("time_proj");
        float[] frequencies = Frequencies();
        Value angles = timesteps.Cast(TensorElementType.Float).Unsqueeze(1) * graph.Constant(frequencies, [1, frequencies.Length]);
        Value embedding = FlipSinToCos ? Value.Concat(-1, angles.Cos(), angles.Sin()) : Value.Concat(-1, angles.Sin(), angles.Cos());
        return Channels % 2 == 0 ? embedding : graph.Node("Pad", [embedding, graph.Int64s(0, 0, 0, 1)], attributes: ("mode", "constant"));
    }
}
