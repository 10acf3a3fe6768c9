using StableDiffusion.Models;

namespace StableDiffusion.Onnx.Builders;

/// <summary>
/// diffusers' <c>UNet2DConditionModel</c> of Stable Diffusion 1.x (and 2.x-style linear projections) as far as its
/// configuration shapes the graph, and the graph built from it: one denoising call, with the inputs and output of diffusers'
/// ONNX export (<c>sample</c>, <c>timestep</c>, <c>encoder_hidden_states</c> → <c>out_sample</c>).
/// </summary>
/// <param name="InChannels">Channels of the sample (4, or 9 for inpainting).</param>
/// <param name="OutChannels">Channels of the prediction.</param>
/// <param name="BlockOutChannels">Channels per resolution, from the highest down.</param>
/// <param name="CrossAttentionDown">Per down block: a <c>CrossAttnDownBlock2D</c> (true) or a <c>DownBlock2D</c>.</param>
/// <param name="CrossAttentionUp">Per up block, from the lowest resolution up: a <c>CrossAttnUpBlock2D</c> (true) or an <c>UpBlock2D</c>.</param>
/// <param name="MidBlock">The mid block's type, or null for none.</param>
/// <param name="LayersPerBlock">Resnets per down block (up blocks have one more), per block.</param>
/// <param name="TransformerLayers">Transformer blocks per attention, per down block.</param>
/// <param name="Heads">Attention heads per block: diffusers' <c>attention_head_dim</c>, which for historical reasons counts heads.</param>
/// <param name="CrossAttentionDim">Width of <c>encoder_hidden_states</c> per block.</param>
/// <param name="OnlyCrossAttention">Per block: whether the first attention attends to the context too.</param>
/// <param name="LinearProjection">Whether the transformers project with linear layers instead of 1x1 convolutions.</param>
/// <param name="Time">The sinusoidal timestep projection and the width of the time embedding.</param>
/// <param name="CenterInputSample">Whether the sample is mapped from [0, 1] to [-1, 1] first.</param>
/// <param name="DownsamplePadding">Padding of the downsampling convolutions.</param>
/// <param name="MidBlockScaleFactor">Divides the mid block's resnet outputs.</param>
/// <param name="NormGroups">Groups of every group norm.</param>
/// <param name="NormEpsilon">Epsilon of the resnets' and the output's group norms.</param>
/// <param name="ConvInKernel">Kernel size of <c>conv_in</c>.</param>
/// <param name="ConvOutKernel">Kernel size of <c>conv_out</c>.</param>
internal sealed record UNet2DConditionModel(
    int InChannels, int OutChannels, int[] BlockOutChannels, bool[] CrossAttentionDown, bool[] CrossAttentionUp, string? MidBlock,
    int[] LayersPerBlock, int[] TransformerLayers, int[] Heads, int[] CrossAttentionDim, bool[] OnlyCrossAttention, bool LinearProjection,
    TimestepProjection Time, bool CenterInputSample, int DownsamplePadding, float MidBlockScaleFactor, int NormGroups, float NormEpsilon,
    int ConvInKernel, int ConvOutKernel)
{
    private const string CrossAttentionMidBlock = "UNetMidBlock2DCrossAttn";
    private const string ResnetMidBlock = "UNetMidBlock2D";

    /// <summary>Reads the configuration of a <c>unet</c> folder's <c>config.json</c>.</summary>
    /// <exception cref="ModelLoadException">A field has a value the builder cannot build (the message names it and its value).</exception>
    public static UNet2DConditionModel FromConfig(ComponentConfig config)
    {
        // Features of other model families (SDXL's added embeddings, class-conditioned and LCM-distilled UNets, GLIGEN...).
        foreach (string field in new[]
        {
            "class_embed_type", "num_class_embeds", "addition_embed_type", "encoder_hid_dim", "encoder_hid_dim_type", "time_cond_proj_dim",
            "time_embedding_act_fn", "timestep_post_act", "cross_attention_norm", "num_attention_heads", "reverse_transformer_layers_per_block",
        })
        {
            config.RequireNull(field);
        }

        config.OneOf("attention_type", "default", "default");
        config.OneOf("resnet_time_scale_shift", "default", "default");
        config.OneOf("time_embedding_type", "positional", "positional");
        config.OneOf("act_fn", "silu", "silu", "swish");
        if (config.Bool("dual_cross_attention", false))
        {
            throw new ModelLoadException($"The configuration '{config.Path}' has \"dual_cross_attention\": true, which this SDK cannot build; it supports false.", config.Path);
        }

        string[] down = config.AllOf("down_block_types", "CrossAttnDownBlock2D", "DownBlock2D");
        string[] up = config.AllOf("up_block_types", "CrossAttnUpBlock2D", "UpBlock2D");
        int blocks = down.Length;
        int[] channels = config.Ints("block_out_channels", [320, 640, 1280, 1280]);
        if (up.Length != blocks || channels.Length != blocks)
        {
            throw new ModelLoadException(
                $"The configuration '{config.Path}' has {blocks} down_block_types, {up.Length} up_block_types and {channels.Length} block_out_channels; they must pair up.", config.Path);
        }

        int groups = config.Int("norm_num_groups", 32);
        if (channels.FirstOrDefault(c => c % groups != 0) is int odd and > 0)
        {
            throw new ModelLoadException($"The configuration '{config.Path}' has norm_num_groups {groups}, which does not divide the block channels {odd}.", config.Path);
        }

        int[] heads = config.IntPerBlock("attention_head_dim", blocks, 8);
        int convIn = OddKernel(config, "conv_in_kernel");
        int convOut = OddKernel(config, "conv_out_kernel");
        int timeDim = config.Int("time_embedding_dim", channels[0] * 4);
        var time = new TimestepProjection(channels[0], config.Bool("flip_sin_to_cos", true), config.Float("freq_shift", 0f), timeDim);
        string? mid = config.IsNull("mid_block_type") ? null : config.OneOf("mid_block_type", CrossAttentionMidBlock, CrossAttentionMidBlock, ResnetMidBlock);
        int[] crossAttentionDim = config.IntPerBlock("cross_attention_dim", blocks, 1280);
        if (crossAttentionDim.Distinct().Count() != 1)
        {
            throw new ModelLoadException(
                $"The configuration '{config.Path}' has \"cross_attention_dim\": [{string.Join(", ", crossAttentionDim)}], which this SDK cannot build; it supports one width for every block.", config.Path);
        }

        return new UNet2DConditionModel(
            config.Int("in_channels", 4), config.Int("out_channels", 4), channels,
            [.. down.Select(t => t == "CrossAttnDownBlock2D")], [.. up.Select(t => t == "CrossAttnUpBlock2D")], mid,
            config.IntPerBlock("layers_per_block", blocks, 2), config.IntPerBlock("transformer_layers_per_block", blocks, 1), heads,
            crossAttentionDim, config.BoolPerBlock("only_cross_attention", blocks, false),
            config.Bool("use_linear_projection", false), time, config.Bool("center_input_sample", false), config.Int("downsample_padding", 1, minimum: 0),
            config.Float("mid_block_scale_factor", 1f), groups, config.Float("norm_eps", 1e-5f), convIn, convOut);
    }

    /// <summary>
    /// Declares diffusers' ONNX export's inputs (<c>sample</c> [batch, in_channels, height, width] and
    /// <c>encoder_hidden_states</c> [batch, sequence, cross_attention_dim] in <paramref name="elementType"/>, <c>timestep</c>
    /// [batch] in float32 so that fractional timesteps reach the embedding whole) and its output <c>out_sample</c>, and builds
    /// the UNet between them in the graph's flavor.
    /// </summary>
    public void BuildGraph(GraphBuilder graph, TensorElementType elementType = TensorElementType.Float)
    {
        Value sample = graph.Input("sample", elementType, "batch", InChannels, "height", "width");
        Value timestep = graph.Input("timestep", TensorElementType.Float, "batch");
        Value context = graph.Input("encoder_hidden_states", elementType, "batch", "sequence", CrossAttentionDim[0]);
        graph.Output(Build(graph, sample, timestep, context), "out_sample", "batch", OutChannels, "height", "width");
    }

    /// <summary>
    /// The UNet's forward: <paramref name="sample"/> [N, in_channels, H, W] (NCHW) at <paramref name="timestep"/> ([N] or [1],
    /// float32) attending to <paramref name="context"/> [N, L, cross_attention_dim] gives the prediction [N, out_channels, H, W].
    /// </summary>
    public Value Build(GraphBuilder graph, Value sample, Value timestep, Value context)
    {
        GraphFlavor flavor = graph.Flavor;
        // One timestep per image, as diffusers expands it: a fused norm takes the time embedding per image, never broadcast.
        timestep = timestep.Expand(sample.Shape().Slice([0], [1], [0]));
        Value temb = TimeEmbedding(graph, Time.Embed(graph, timestep).Cast(sample.ElementType));
        Value h = flavor.FromNchw(CenterInputSample ? (sample * 2f) - 1f : sample);
        h = graph.Conv2d("conv_in", h, padding: ConvInKernel / 2);

        var skips = new Stack<Value>([h]);
        int channels = BlockOutChannels[0];
        for (int block = 0; block < BlockOutChannels.Length; block++)
        {
            using var scope = graph.Scope($"down_blocks.{block}");
            int output = BlockOutChannels[block];
            for (int layer = 0; layer < LayersPerBlock[block]; layer++)
            {
                h = Resnet(layer == 0 ? channels : output, output).Build(graph, $"resnets.{layer}", h, temb);
                if (CrossAttentionDown[block])
                {
                    h = Transformer(block, output, TransformerLayers[block]).Build(graph, $"attentions.{layer}", h, context);
                }

                skips.Push(h);
            }

            channels = output;
            if (block < BlockOutChannels.Length - 1)
            {
                h = graph.Downsample2D("downsamplers.0", h, DownsamplePadding);
                skips.Push(h);
            }
        }

        h = MidBlockForward(graph, h, temb, context);

        int[] reversedLayers = [.. LayersPerBlock.Reverse()];
        int[] reversedTransformerLayers = [.. TransformerLayers.Reverse()];
        for (int block = 0; block < BlockOutChannels.Length; block++)
        {
            using var scope = graph.Scope($"up_blocks.{block}");
            int output = BlockOutChannels[^(block + 1)];
            int skipChannels = BlockOutChannels[^Math.Min(block + 2, BlockOutChannels.Length)];
            int layers = reversedLayers[block] + 1;
            for (int layer = 0; layer < layers; layer++)
            {
                int residual = layer == layers - 1 ? skipChannels : output;
                h = Value.Concat(flavor.ChannelAxis, h, skips.Pop());
                h = Resnet((layer == 0 ? channels : output) + residual, output).Build(graph, $"resnets.{layer}", h, temb);
                if (CrossAttentionUp[block])
                {
                    h = Transformer(BlockOutChannels.Length - 1 - block, output, reversedTransformerLayers[block]).Build(graph, $"attentions.{layer}", h, context);
                }
            }

            channels = output;
            if (block < BlockOutChannels.Length - 1)
            {
                // To the size of the skip it meets next: 2x, or diffusers' upsample_size when a size was odd on the way down.
                h = graph.Upsample2D("upsamplers.0", h, sizeOf: skips.Peek());
            }
        }

        h = graph.GroupNorm("conv_norm_out", h, NormGroups, channels, NormEpsilon, silu: true);
        return flavor.ToNchw(graph.Conv2d("conv_out", h, padding: ConvOutKernel / 2));
    }

    // TimestepEmbedding: linear_1, SiLU, linear_2.
    private static Value TimeEmbedding(GraphBuilder graph, Value projected)
    {
        using var scope = graph.Scope("time_embedding");
        return graph.Linear("linear_2", graph.Linear("linear_1", projected).Silu());
    }

    private Value MidBlockForward(GraphBuilder graph, Value h, Value temb, Value context)
    {
        if (MidBlock is null)
        {
            return h;
        }

        using var scope = graph.Scope("mid_block");
        int channels = BlockOutChannels[^1];
        var resnet = new ResnetBlock2D(channels, channels, NormGroups, NormEpsilon, MidBlockScaleFactor);
        h = resnet.Build(graph, "resnets.0", h, temb);
        if (MidBlock == CrossAttentionMidBlock)
        {
            // The mid block takes no only_cross_attention: its transformer always self-attends first.
            var transformer = Transformer(BlockOutChannels.Length - 1, channels, TransformerLayers[^1]) with { OnlyCrossAttention = false };
            h = resnet.Build(graph, "resnets.1", transformer.Build(graph, "attentions.0", h, context), temb);
        }

        return h;
    }

    private ResnetBlock2D Resnet(int inChannels, int outChannels) => new(inChannels, outChannels, NormGroups, NormEpsilon);

    // diffusers gives each block's Transformer2DModel attention_head_dim heads of out_channels / heads each.
    private Transformer2D Transformer(int block, int channels, int layers) =>
        new(channels, Heads[block], channels / Heads[block], layers, NormGroups, LinearProjection, OnlyCrossAttention[block]);

    private static int OddKernel(ComponentConfig config, string field)
    {
        int kernel = config.Int(field, 3);
        return kernel % 2 == 1 ? kernel : throw new ModelLoadException($"The configuration '{config.Path}' has \"{field}\": {kernel}, which this SDK cannot build; it supports an odd kernel size.", config.Path);
    }
}
