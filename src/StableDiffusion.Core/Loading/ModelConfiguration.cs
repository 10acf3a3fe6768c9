using System.Text.Json;
using StableDiffusion.Models;

namespace StableDiffusion.Loading;

/// <summary>
/// The numbers a pipeline needs beyond the graphs: the default image size, the VAE's scale factor and latent scaling.
/// diffusers ONNX exports carry no component configs, so the SD 1.x values apply unless a component folder has a
/// <c>config.json</c> (Optimum exports do) saying otherwise.
/// </summary>
/// <param name="SampleSize">The UNet's latent sample size (64 for SD 1.x, so 512-pixel images).</param>
/// <param name="VaeScaleFactor">Pixels per latent (8: 2^(number of VAE blocks - 1)).</param>
/// <param name="ScalingFactor">The VAE latent scaling factor (0.18215 for SD 1.x).</param>
internal sealed record ModelConfiguration(int SampleSize, int VaeScaleFactor, float ScalingFactor)
{
    public int DefaultImageSize => SampleSize * VaeScaleFactor;

    public static ModelConfiguration Load(string modelPath)
    {
        int sampleSize = 64;
        int scaleFactor = 8;
        float scaling = 0.18215f;
        if (ReadConfig(modelPath, ModelComponents.Unet) is JsonElement unet && unet.TryGetProperty("sample_size", out JsonElement size) && size.TryGetInt32(out int s))
        {
            sampleSize = s;
        }

        foreach (string vae in new[] { ModelComponents.VaeDecoder, "vae" })
        {
            if (ReadConfig(modelPath, vae) is not JsonElement config)
            {
                continue;
            }

            if (config.TryGetProperty("scaling_factor", out JsonElement factor) && factor.TryGetSingle(out float f))
            {
                scaling = f;
            }

            if (config.TryGetProperty("block_out_channels", out JsonElement blocks) && blocks.ValueKind == JsonValueKind.Array)
            {
                scaleFactor = 1 << (blocks.GetArrayLength() - 1);
            }

            break;
        }

        return new ModelConfiguration(sampleSize, scaleFactor, scaling);
    }

    private static JsonElement? ReadConfig(string modelPath, string component)
    {
        string path = Path.Combine(modelPath, component, "config.json");
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            using JsonDocument document = JsonDocument.Parse(File.ReadAllText(path));
            return document.RootElement.ValueKind == JsonValueKind.Object ? document.RootElement.Clone() : throw new ModelLoadException($"'{path}' must hold a JSON object.", path);
        }
        catch (JsonException ex)
        {
            throw new ModelLoadException($"'{path}' is not valid JSON: {ex.Message}", path, ex);
        }
    }
}
