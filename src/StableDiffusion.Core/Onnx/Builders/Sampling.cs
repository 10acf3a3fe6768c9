namespace StableDiffusion.Onnx.Builders;

/// <summary>diffusers' <c>Upsample2D</c> and <c>Downsample2D</c> with their convolutions.</summary>
internal static class Sampling
{
    /// <summary>
    /// <c>Upsample2D</c> with <c>use_conv</c>: nearest-neighbour 2x (or to the size of <paramref name="sizeOf"/>, diffusers'
    /// <c>upsample_size</c>), then a 3x3 convolution (<c>conv</c>).
    /// </summary>
    public static Value Upsample2D(this GraphBuilder graph, string name, Value x, Value? sizeOf = null)
    {
        using var scope = graph.Scope(name);
        return graph.Conv2d("conv", graph.Flavor.UpsampleNearest(x, sizeOf), padding: 1);
    }

    /// <summary><c>Downsample2D</c> with <c>use_conv</c>: a 3x3 convolution of stride 2 with padding <paramref name="padding"/>.</summary>
    /// <remarks>With padding 0 (the VAE encoder's) diffusers first pads one column right and one row below.</remarks>
    public static Value Downsample2D(this GraphBuilder graph, string name, Value x, int padding = 1)
    {
        using var scope = graph.Scope(name);
        if (padding == 0)
        {
            long[] pads = new long[8];
            pads[4 + graph.Flavor.HeightAxis] = pads[5 + graph.Flavor.HeightAxis] = 1;
            x = graph.Node("Pad", [x, graph.Int64s(pads)], attributes: ("mode", "constant"));
        }

        return graph.Conv2d("conv", x, stride: 2, padding: padding);
    }
}
