namespace StableDiffusion.Onnx.Builders;

/// <summary>
/// diffusers' <c>AutoencoderKL</c> as far as its configuration shapes the graph, and its two halves built from it: the
/// encoder up to the latent distribution (<c>vae.encode(x).latent_dist</c>), and <c>vae.decode</c> (<c>post_quant_conv</c>,
/// then the decoder), as diffusers' ONNX export has it.
/// </summary>
/// <param name="BlockOutChannels">Channels per block (<c>block_out_channels</c>), from the highest resolution down.</param>
/// <param name="LayersPerBlock">Resnets per encoder block; decoder blocks have one more.</param>
/// <param name="NormGroups">Groups of every group norm (<c>norm_num_groups</c>).</param>
/// <param name="LatentChannels">Channels of the latents.</param>
/// <param name="OutChannels">Channels of the decoded image.</param>
/// <param name="InChannels">Channels of the encoded image.</param>
/// <param name="UseQuantConv">Whether a 1x1 <c>quant_conv</c> follows the encoder.</param>
/// <param name="UsePostQuantConv">Whether a 1x1 <c>post_quant_conv</c> precedes the decoder.</param>
/// <param name="MidBlockAttention">Whether the mid block has its attention (<c>mid_block_add_attention</c>).</param>
internal sealed record AutoencoderKL(
    int[] BlockOutChannels, int LayersPerBlock, int NormGroups, int LatentChannels, int OutChannels, int InChannels, bool UseQuantConv, bool UsePostQuantConv, bool MidBlockAttention)
{
    /// <summary>The epsilon of the decoder's group norms (diffusers fixes it).</summary>
    private const float Epsilon = 1e-6f;

    /// <summary>Reads the configuration of a <c>vae</c> folder's <c>config.json</c>.</summary>
    /// <exception cref="Models.ModelLoadException">A field has a value the builder cannot build (the message names it).</exception>
    public static AutoencoderKL FromConfig(ComponentConfig config)
    {
        int[] channels = config.Ints("block_out_channels", [64]);
        foreach ((string field, string type) in new[] { ("down_block_types", "DownEncoderBlock2D"), ("up_block_types", "UpDecoderBlock2D") })
        {
            string[] blocks = config.AllOf(field, type);
            if (blocks.Length != channels.Length)
            {
                throw new Models.ModelLoadException(
                    $"The configuration '{config.Path}' has {blocks.Length} {field} for {channels.Length} block_out_channels; they must pair up.", config.Path);
            }
        }

        config.OneOf("act_fn", "silu", "silu");
        int groups = config.Int("norm_num_groups", 32);
        if (channels.FirstOrDefault(c => c % groups != 0) is int odd and > 0)
        {
            throw new Models.ModelLoadException($"The configuration '{config.Path}' has norm_num_groups {groups}, which does not divide the block channels {odd}.", config.Path);
        }

        return new AutoencoderKL(channels, config.Int("layers_per_block", 1), groups, config.Int("latent_channels", 4), config.Int("out_channels", 3),
            config.Int("in_channels", 3), config.Bool("use_quant_conv", true), config.Bool("use_post_quant_conv", true), config.Bool("mid_block_add_attention", true));
    }

    /// <summary>
    /// Encodes images [N, in_channels, H, W] in [-1, 1] to the latent distribution's mean and standard deviation,
    /// [N, latent_channels, H/8, W/8] each, with the weights under <c>encoder.</c> and <c>quant_conv.</c>.
    /// </summary>
    public (Value Mean, Value Std) Encode(GraphBuilder graph, Value images)
    {
        Value h;
        using (graph.Scope("encoder"))
        {
            h = graph.Conv2d("conv_in", graph.Flavor.FromNchw(images), padding: 1);
            int channels = BlockOutChannels[0];
            for (int block = 0; block < BlockOutChannels.Length; block++)
            {
                using var down = graph.Scope($"down_blocks.{block}");
                int output = BlockOutChannels[block];
                for (int layer = 0; layer < LayersPerBlock; layer++)
                {
                    h = new ResnetBlock2D(layer == 0 ? channels : output, output, NormGroups, Epsilon).Build(graph, $"resnets.{layer}", h);
                }

                channels = output;
                if (block < BlockOutChannels.Length - 1)
                {
                    h = graph.Downsample2D("downsamplers.0", h, padding: 0);
                }
            }

            h = MidBlock(graph, h);
            h = graph.GroupNorm("conv_norm_out", h, NormGroups, channels, Epsilon, silu: true);
            h = graph.Conv2d("conv_out", h, padding: 1);
        }

        Value moments = graph.Flavor.ToNchw(UseQuantConv ? graph.Conv2d("quant_conv", h) : h);
        Value[] halves = moments.Chunk(2, axis: 1);
        // diffusers' DiagonalGaussianDistribution: the log-variance clamped to [-30, 20].
        return (halves[0], (halves[1].Clip(-30f, 20f) * 0.5f).Exp());
    }

    /// <summary>
    /// Decodes latents [N, latent_channels, h, w] (already divided by the scaling factor) to images [N, out_channels, 8h, 8w]
    /// in [-1, 1], with the weights under <c>post_quant_conv.</c> and <c>decoder.</c>.
    /// </summary>
    public Value Decode(GraphBuilder graph, Value latents)
    {
        latents = graph.Flavor.FromNchw(latents);
        Value z = UsePostQuantConv ? graph.Conv2d("post_quant_conv", latents) : latents;
        using var decoder = graph.Scope("decoder");
        int channels = BlockOutChannels[^1];
        Value h = MidBlock(graph, graph.Conv2d("conv_in", z, padding: 1));
        for (int block = 0; block < BlockOutChannels.Length; block++)
        {
            using var up = graph.Scope($"up_blocks.{block}");
            int output = BlockOutChannels[^(block + 1)];
            for (int layer = 0; layer <= LayersPerBlock; layer++)
            {
                h = new ResnetBlock2D(layer == 0 ? channels : output, output, NormGroups, Epsilon).Build(graph, $"resnets.{layer}", h);
            }

            channels = output;
            if (block < BlockOutChannels.Length - 1)
            {
                h = graph.Upsample2D("upsamplers.0", h);
            }
        }

        h = graph.GroupNorm("conv_norm_out", h, NormGroups, channels, Epsilon, silu: true);
        return graph.Flavor.ToNchw(graph.Conv2d("conv_out", h, padding: 1));
    }

    // UNetMidBlock2D of the VAE: a resnet, the attention, a resnet, at the last block's width.
    private Value MidBlock(GraphBuilder graph, Value h)
    {
        int channels = BlockOutChannels[^1];
        using var scope = graph.Scope("mid_block");
        var resnet = new ResnetBlock2D(channels, channels, NormGroups, Epsilon);
        h = resnet.Build(graph, "resnets.0", h);
        if (MidBlockAttention)
        {
            h = graph.SpatialSelfAttention("attentions.0", h, channels, NormGroups, Epsilon);
        }

        return resnet.Build(graph, "resnets.1", h);
    }
}
