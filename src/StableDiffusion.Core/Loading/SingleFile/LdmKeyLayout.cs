using StableDiffusion.Onnx;
using StableDiffusion.Onnx.Builders;

namespace StableDiffusion.Loading.SingleFile;

/// <summary>
/// Where the original Stable Diffusion checkpoints (CompVis' latent diffusion code, the layout of the single files people
/// download) keep each weight of a diffusers module: the graph builders ask for diffusers' names, and this answers with
/// the file's key, so the weights stay where they are in the file.
/// </summary>
/// <remarks>
/// The tables are built from the component's configuration, module by module (diffusers' <c>from_single_file</c> converts
/// the same way, from the configuration's <c>layers_per_block</c> and block types), so they hold for any number of blocks
/// and layers: tiny test models as well as SD 1.5.
/// </remarks>
internal sealed class LdmKeyLayout
{
    /// <summary>The UNet's prefix in the original checkpoints.</summary>
    public const string UNetPrefix = "model.diffusion_model.";

    /// <summary>The VAE's prefix in the original checkpoints.</summary>
    public const string VaePrefix = "first_stage_model.";

    /// <summary>The CLIP text encoder's prefix in the original checkpoints (transformers' own names follow it).</summary>
    public const string TextEncoderPrefix = "cond_stage_model.transformer.";

    // The names inside a resnet that the original code gives otherwise (the rest are the same).
    private static readonly (string Diffusers, string Ldm)[] UNetResnet =
    [
        ("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"), ("conv2", "out_layers.3"),
        ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection"),
    ];

    private static readonly (string Diffusers, string Ldm)[] VaeResnet = [("conv_shortcut", "nin_shortcut")];

    private static readonly (string Diffusers, string Ldm)[] VaeAttention =
        [("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out")];

    private readonly string _prefix;
    private readonly Dictionary<string, Module> _modules = new(StringComparer.Ordinal);

    private LdmKeyLayout(string prefix) => _prefix = prefix;

    /// <summary>The original names of <paramref name="unet"/>'s weights.</summary>
    public static LdmKeyLayout ForUNet(UNet2DConditionModel unet)
    {
        var layout = new LdmKeyLayout(UNetPrefix);
        layout.Add("time_embedding.linear_1", "time_embed.0");
        layout.Add("time_embedding.linear_2", "time_embed.2");
        layout.Add("conv_in", "input_blocks.0.0");
        layout.Add("conv_norm_out", "out.0");
        layout.Add("conv_out", "out.2");

        // input_blocks: after conv_in, each down block's layers (a resnet, then its attention), then its downsampler.
        int blocks = unet.BlockOutChannels.Length;
        int input = 1;
        for (int block = 0; block < blocks; block++)
        {
            for (int layer = 0; layer < unet.LayersPerBlock[block]; layer++, input++)
            {
                layout.Add($"down_blocks.{block}.resnets.{layer}", $"input_blocks.{input}.0", UNetResnet);
                layout.Add($"down_blocks.{block}.attentions.{layer}", $"input_blocks.{input}.1");
            }

            if (block < blocks - 1)
            {
                layout.Add($"down_blocks.{block}.downsamplers.0.conv", $"input_blocks.{input++}.0.op");
            }
        }

        layout.Add("mid_block.resnets.0", "middle_block.0", UNetResnet);
        layout.Add("mid_block.attentions.0", "middle_block.1");
        layout.Add("mid_block.resnets.1", "middle_block.2", UNetResnet);

        // output_blocks: each up block's layers (one more than its down block has), the upsampler after the last one's
        // attention, if any.
        int output = 0;
        for (int block = 0; block < blocks; block++)
        {
            int layers = unet.LayersPerBlock[^(block + 1)] + 1;
            bool attention = unet.CrossAttentionUp[block];
            for (int layer = 0; layer < layers; layer++, output++)
            {
                layout.Add($"up_blocks.{block}.resnets.{layer}", $"output_blocks.{output}.0", UNetResnet);
                if (attention)
                {
                    layout.Add($"up_blocks.{block}.attentions.{layer}", $"output_blocks.{output}.1");
                }

                if (layer == layers - 1 && block < blocks - 1)
                {
                    layout.Add($"up_blocks.{block}.upsamplers.0.conv", $"output_blocks.{output}.{(attention ? 2 : 1)}.conv");
                }
            }
        }

        return layout;
    }

    /// <summary>The original names of <paramref name="vae"/>'s weights.</summary>
    public static LdmKeyLayout ForVae(AutoencoderKL vae)
    {
        var layout = new LdmKeyLayout(VaePrefix);
        int blocks = vae.BlockOutChannels.Length;
        foreach (string half in new[] { "encoder", "decoder" })
        {
            layout.Add($"{half}.conv_in", $"{half}.conv_in");
            layout.Add($"{half}.conv_out", $"{half}.conv_out");
            layout.Add($"{half}.conv_norm_out", $"{half}.norm_out");
            layout.Add($"{half}.mid_block.resnets.0", $"{half}.mid.block_1", VaeResnet);
            layout.Add($"{half}.mid_block.resnets.1", $"{half}.mid.block_2", VaeResnet);
            layout.Add($"{half}.mid_block.attentions.0", $"{half}.mid.attn_1", VaeAttention, convolutionAttention: true);
        }

        layout.Add("quant_conv", "quant_conv");
        layout.Add("post_quant_conv", "post_quant_conv");
        for (int block = 0; block < blocks; block++)
        {
            for (int layer = 0; layer < vae.LayersPerBlock; layer++)
            {
                layout.Add($"encoder.down_blocks.{block}.resnets.{layer}", $"encoder.down.{block}.block.{layer}", VaeResnet);
            }

            layout.Add($"encoder.down_blocks.{block}.downsamplers.0.conv", $"encoder.down.{block}.downsample.conv");

            // The original decoder numbers its levels from the highest resolution, diffusers' up blocks from the lowest.
            int level = blocks - 1 - block;
            for (int layer = 0; layer <= vae.LayersPerBlock; layer++)
            {
                layout.Add($"decoder.up_blocks.{block}.resnets.{layer}", $"decoder.up.{level}.block.{layer}", VaeResnet);
            }

            layout.Add($"decoder.up_blocks.{block}.upsamplers.0.conv", $"decoder.up.{level}.upsample.conv");
        }

        return layout;
    }

    /// <summary>The original names of the CLIP text encoder's weights: transformers' own, under <see cref="TextEncoderPrefix"/>.</summary>
    public static LdmKeyLayout ForTextEncoder()
    {
        var layout = new LdmKeyLayout(TextEncoderPrefix);
        layout.Add("", "");
        return layout;
    }

    /// <summary>
    /// The file's name for the diffusers weight <paramref name="key"/> (such as <c>down_blocks.0.resnets.0.norm1.weight</c>),
    /// or null for a key outside the component.
    /// </summary>
    public StoredWeightName? FileKey(string key)
    {
        // The longest module path that the table knows, then the weight's path inside that module.
        for (int end = key.LastIndexOf('.'); ; end = key.LastIndexOf('.', end - 1))
        {
            if (_modules.TryGetValue(end < 0 ? "" : key[..end], out Module? module))
            {
                string inner = key[(end + 1)..];
                foreach ((string diffusers, string ldm) in module.Renames)
                {
                    if (inner.StartsWith(diffusers + ".", StringComparison.Ordinal))
                    {
                        bool projection = module.ConvolutionAttention && diffusers != "group_norm" && inner.EndsWith(".weight", StringComparison.Ordinal);
                        return new StoredWeightName(Join(module.Original, ldm + inner[diffusers.Length..]), AsMatrix: projection);
                    }
                }

                return new StoredWeightName(Join(module.Original, inner));
            }

            if (end <= 0)
            {
                return null;
            }
        }
    }

    private string Join(string module, string inner) => _prefix + (module.Length == 0 ? inner : $"{module}.{inner}");

    private void Add(string diffusers, string original, (string, string)[]? renames = null, bool convolutionAttention = false) =>
        _modules[diffusers] = new Module(original, renames ?? [], convolutionAttention);

    // A diffusers module's path in the original layout, the names inside it that differ, and whether its attention
    // projections are stored as 1x1 convolutions (the VAE's).
    private sealed record Module(string Original, (string Diffusers, string Ldm)[] Renames, bool ConvolutionAttention);
}
