namespace StableDiffusion.Onnx.Builders;

/// <summary>
/// The decoder of diffusers' <c>AutoencoderTiny</c> (TAESD) as its configuration shapes it: latents soft-clamped to
/// [-3, 3] with tanh, a convolution and ReLU, then per block its residual blocks (three 3x3 convolutions with ReLUs and an
/// identity skip), a nearest 2x upsample between blocks and a convolution, with the weights under <c>decoder.layers.{i}</c>
/// in the order of the module's <c>nn.Sequential</c>.
/// </summary>
/// <param name="BlockOutChannels">Channels per decoder block (<c>decoder_block_out_channels</c>).</param>
/// <param name="BlocksPerStage">Residual blocks per decoder block (<c>num_decoder_blocks</c>).</param>
/// <param name="LatentChannels">Channels of the latents.</param>
/// <param name="OutChannels">Channels of the decoded image.</param>
internal sealed record AutoencoderTiny(int[] BlockOutChannels, int[] BlocksPerStage, int LatentChannels, int OutChannels)
{
    /// <summary>Reads the configuration of an <c>AutoencoderTiny</c> folder's <c>config.json</c>.</summary>
    /// <exception cref="Models.ModelLoadException">A field has a value the builder cannot build (the message names it).</exception>
    public static AutoencoderTiny FromConfig(ComponentConfig config)
    {
        config.OneOf("act_fn", "relu", "relu");
        config.OneOf("upsample_fn", "nearest", "nearest");
        if (config.Int("upsampling_scaling_factor", 2) != 2)
        {
            throw new Models.ModelLoadException($"The configuration '{config.Path}' has upsampling_scaling_factor {config.Int("upsampling_scaling_factor", 2)}; the tiny decoder is built for 2.", config.Path);
        }

        int[] channels = config.Ints("decoder_block_out_channels", [64, 64, 64, 64]);
        int[] blocks = config.Ints("num_decoder_blocks", [3, 3, 3, 1]);
        if (channels.Length != blocks.Length)
        {
            throw new Models.ModelLoadException(
                $"The configuration '{config.Path}' has {blocks.Length} num_decoder_blocks for {channels.Length} decoder_block_out_channels; they must pair up.", config.Path);
        }

        return new AutoencoderTiny(channels, blocks, config.Int("latent_channels", 4), config.Int("out_channels", 3));
    }

    /// <summary>Decodes latents [N, latent_channels, h, w] to images [N, out_channels, h * 2^(blocks - 1), ...] in [-1, 1].</summary>
    public Value Decode(GraphBuilder graph, Value latents)
    {
        using var decoder = graph.Scope("decoder");
        using var layers = graph.Scope("layers");
        Value h = (graph.Flavor.FromNchw(latents) / 3f).Tanh() * 3f;
        int index = 0;
        h = Relu(graph.Conv2d($"{index}", h, padding: 1));
        index += 2; // the convolution and its activation
        for (int block = 0; block < BlockOutChannels.Length; block++)
        {
            bool last = block == BlockOutChannels.Length - 1;
            for (int i = 0; i < BlocksPerStage[block]; i++)
            {
                h = ResidualBlock(graph, $"{index++}", h);
            }

            if (!last)
            {
                h = graph.Flavor.UpsampleNearest(h, null);
                index++;
            }

            h = graph.Conv2d($"{index++}", h, padding: 1, bias: last);
        }

        // The decoder ends in [0, 1]; diffusers shifts it to [-1, 1] like the other VAEs.
        return graph.Flavor.ToNchw((h * 2f) - 1f);
    }

    // AutoencoderTinyBlock with equal input and output channels: relu(conv(relu(conv(relu(conv(x))))) + x).
    private static Value ResidualBlock(GraphBuilder graph, string name, Value x)
    {
        using var scope = graph.Scope(name);
        Value h = Relu(graph.Conv2d("conv.0", x, padding: 1));
        h = Relu(graph.Conv2d("conv.2", h, padding: 1));
        h = graph.Conv2d("conv.4", h, padding: 1);
        return Relu(h + x);
    }

    private static Value Relu(Value x) => x.Graph.Node("Relu", [x]);
}
