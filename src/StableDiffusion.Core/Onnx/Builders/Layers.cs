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

    /// <summary><c>nn.Linear(in_features, out_features)</c>, its weight required to be [out, in] (and its bias [out]).</summary>
    public static Value Linear(this GraphBuilder graph, string name, Value x, int inFeatures, int outFeatures, bool bias = true)
    {
        using var scope = graph.Scope(name);
        return x.Linear(graph.Parameter("weight", shape: [outFeatures, inFeatures]), bias ? graph.Parameter("bias", shape: [outFeatures]) : null);
    }

    /// <summary><c>nn.Conv2d</c> with a square kernel, stride and padding.</summary>
    public static Value Conv2d(this GraphBuilder graph, string name, Value x, int stride = 1, int padding = 0, bool bias = true)
    {
        using var scope = graph.Scope(name);
        return x.Conv(graph.Parameter("weight"), bias ? graph.Parameter("bias") : null, stride, padding);
    }

    /// <summary><c>nn.GroupNorm</c> over images [N, C, H, W] (or [N, C, L]), with its per-channel affine transform.</summary>
    public static Value GroupNorm(this GraphBuilder graph, string name, Value x, int groups, int channels, float epsilon, int spatialRank = 2)
    {
        using var scope = graph.Scope(name);
        long[] shape = [channels, .. Enumerable.Repeat(1L, spatialRank)];
        return x.GroupNorm(groups, graph.Parameter("weight", shape: shape), graph.Parameter("bias", shape: shape), epsilon);
    }

    /// <summary><c>nn.LayerNorm</c> over the last dimension.</summary>
    public static Value LayerNorm(this GraphBuilder graph, string name, Value x, float epsilon = 1e-5f)
    {
        using var scope = graph.Scope(name);
        return x.LayerNorm(graph.Parameter("weight"), graph.Parameter("bias"), epsilon);
    }

    /// <summary><c>nn.LayerNorm(features)</c> over the last dimension, its weight and bias required to be [features].</summary>
    public static Value LayerNorm(this GraphBuilder graph, string name, Value x, int features, float epsilon)
    {
        using var scope = graph.Scope(name);
        return x.LayerNorm(graph.Parameter("weight", shape: [features]), graph.Parameter("bias", shape: [features]), epsilon);
    }
}
