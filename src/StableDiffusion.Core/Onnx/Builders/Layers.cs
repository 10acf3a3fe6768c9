namespace StableDiffusion.Onnx.Builders;

/// <summary>
/// PyTorch's <c>torch.nn</c> layers as graph builders: each enters the layer's scope (its attribute name in the parent
/// module), takes the layer's weights from there, and adds the nodes of its forward.
/// </summary>
internal static class Layers
{
    /// <summary><c>nn.Linear</c>: <c>x @ weight.T + bias</c> over the last dimension.</summary>
    public static Value Linear(this GraphBuilder graph, string name, Value x, bool bias = true)
    {
        using var scope = graph.Scope(name);
        return x.Linear(graph.Parameter("weight"), bias ? graph.Parameter("bias") : null);
    }

    /// <summary>
    /// <c>residual + nn.Linear(x)</c>: a residual connection (<see cref="GraphBuilder.Residual"/>) that keeps the layer's bias
    /// apart, so that the norm after it, or the addition itself, can be one fused operator in the graph's flavor.
    /// </summary>
    public static Value Linear(this GraphBuilder graph, string name, Value x, Value residual)
    {
        using var scope = graph.Scope(name);
        return LinearPlusResidual(graph, x, graph.Parameter("weight"), checked((int)graph.ParameterShape("weight")[0]), residual);
    }

    /// <summary><c>residual + nn.Linear(in_features, out_features)(x)</c>, its weight required to be [out, in] (and its bias [out]).</summary>
    public static Value Linear(this GraphBuilder graph, string name, Value x, int inFeatures, int outFeatures, Value residual)
    {
        using var scope = graph.Scope(name);
        return LinearPlusResidual(graph, x, graph.Parameter("weight", shape: [outFeatures, inFeatures]), outFeatures, residual);
    }

    /// <summary><c>nn.Linear(in_features, out_features)</c>, its weight required to be [out, in] (and its bias [out]).</summary>
    public static Value Linear(this GraphBuilder graph, string name, Value x, int inFeatures, int outFeatures, bool bias = true)
    {
        using var scope = graph.Scope(name);
        return x.Linear(graph.Parameter("weight", shape: [outFeatures, inFeatures]), bias ? graph.Parameter("bias", shape: [outFeatures]) : null);
    }

    /// <summary><c>nn.Conv2d</c> with a square kernel, stride and padding, on images in the graph flavor's layout.</summary>
    public static Value Conv2d(this GraphBuilder graph, string name, Value x, int stride = 1, int padding = 0, bool bias = true)
    {
        using var scope = graph.Scope(name);
        return graph.Flavor.Conv2d(graph, x, stride, padding, bias);
    }

    /// <summary>
    /// <c>nn.GroupNorm</c> with its per-channel affine transform, then SiLU when <paramref name="silu"/> (one fused operator
    /// where the flavor has it): over images in the graph flavor's layout, or over [N, C, L] when <paramref name="spatialRank"/> is 1.
    /// </summary>
    public static Value GroupNorm(this GraphBuilder graph, string name, Value x, int groups, int channels, float epsilon, int spatialRank = 2, bool silu = false)
    {
        using var scope = graph.Scope(name);
        if (spatialRank == 2)
        {
            return graph.Flavor.GroupNorm(graph, x, groups, channels, epsilon, silu);
        }

        long[] shape = [channels, .. Enumerable.Repeat(1L, spatialRank)];
        Value normalized = x.GroupNorm(groups, graph.Parameter("weight", shape: shape), graph.Parameter("bias", shape: shape), epsilon);
        return silu ? normalized.Silu() : normalized;
    }

    /// <summary><c>nn.LayerNorm</c> over the last dimension.</summary>
    public static Value LayerNorm(this GraphBuilder graph, string name, Value x, float epsilon = 1e-5f)
    {
        using var scope = graph.Scope(name);
        return graph.Flavor.LayerNorm(graph, x, graph.Parameter("weight"), graph.Parameter("bias"), epsilon);
    }

    /// <summary><c>nn.LayerNorm(features)</c> over the last dimension, its weight and bias required to be [features].</summary>
    public static Value LayerNorm(this GraphBuilder graph, string name, Value x, int features, float epsilon)
    {
        using var scope = graph.Scope(name);
        return graph.Flavor.LayerNorm(graph, x, graph.Parameter("weight", shape: [features]), graph.Parameter("bias", shape: [features]), epsilon);
    }

    private static Value LinearPlusResidual(GraphBuilder graph, Value x, Value weight, int width, Value residual) =>
        graph.Residual(x.Linear(weight), residual, width, graph.Parameter("bias", shape: [width]));
}
