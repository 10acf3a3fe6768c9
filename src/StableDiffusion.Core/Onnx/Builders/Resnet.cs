namespace StableDiffusion.Onnx.Builders;

/// <summary>diffusers' <c>ResnetBlock2D</c> (the "default" time-embedding norm, SiLU, no dropout at inference).</summary>
/// <param name="InChannels">Channels of the input.</param>
/// <param name="OutChannels">Channels of the output; a 1x1 <c>conv_shortcut</c> maps the input when they differ.</param>
/// <param name="Groups">Groups of both group norms.</param>
/// <param name="Epsilon">Epsilon of both group norms.</param>
/// <param name="OutputScaleFactor">Divides the sum of the shortcut and the residual.</param>
internal sealed record ResnetBlock2D(int InChannels, int OutChannels, int Groups, float Epsilon, float OutputScaleFactor = 1f)
{
    /// <summary>The block's forward in scope <paramref name="name"/>: <paramref name="temb"/> is the time embedding, null in a VAE.</summary>
    public Value Build(GraphBuilder graph, string name, Value x, Value? temb = null)
    {
        using var scope = graph.Scope(name);
        Value h = graph.GroupNorm("norm1", x, Groups, InChannels, Epsilon, silu: true);
        h = graph.Conv2d("conv1", h, padding: 1);
        if (temb is not null)
        {
            h = graph.Residual(h, graph.Flavor.PerChannel(graph.Linear("time_emb_proj", temb.Silu())), OutChannels);
        }

        h = graph.GroupNorm("norm2", h, Groups, OutChannels, Epsilon, silu: true);
        h = graph.Conv2d("conv2", h, padding: 1);
        Value shortcut = InChannels != OutChannels ? graph.Conv2d("conv_shortcut", x) : x;
        Value output = graph.ImageResidual(h, shortcut, OutChannels);
        return OutputScaleFactor == 1f ? output : output / OutputScaleFactor;
    }
}
