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
    // More VAE blocks than this would make the scale factor overflow; real VAEs have 4.
    private const int MaxVaeBlocks = 8;

    public int DefaultImageSize => SampleSize * VaeScaleFactor;

    public static ModelConfiguration Load(string modelPath)
    {
        int sampleSize = 64;
        int scaleFactor = 8;
        float scaling = 0.18215f;
        string unetPath = ConfigPath(modelPath, ModelComponents.UNet);
        if (ReadConfig(unetPath) is JsonElement unet && unet.TryGetProperty("sample_size", out JsonElement size))
        {
            sampleSize = ReadSampleSize(size, unetPath);
        }

        foreach (string vae in new[] { ModelComponents.VaeDecoder, "vae" })
        {
            string path = ConfigPath(modelPath, vae);
            if (ReadConfig(path) is not JsonElement config)
            {
                continue;
            }

            if (config.TryGetProperty("scaling_factor", out JsonElement factor))
            {
                scaling = factor.ValueKind == JsonValueKind.Number && factor.TryGetSingle(out float f) && float.IsFinite(f) && f > 0
                    ? f
                    : throw Invalid(path, "scaling_factor", factor, "a positive number (0.18215 for SD 1.x)");
            }

            if (config.TryGetProperty("block_out_channels", out JsonElement blocks))
            {
                // The VAE halves the resolution between consecutive blocks.
                scaleFactor = blocks.ValueKind == JsonValueKind.Array && blocks.GetArrayLength() is >= 1 and <= MaxVaeBlocks
                    ? 1 << (blocks.GetArrayLength() - 1)
                    : throw Invalid(path, "block_out_channels", blocks, $"a list of 1 to {MaxVaeBlocks} channel counts ([128, 256, 512, 512] for SD 1.x)");
            }

            break;
        }

        return new ModelConfiguration(sampleSize, scaleFactor, scaling);
    }

    private static string ConfigPath(string modelPath, string component) => Path.Combine(modelPath, component, "config.json");

    // diffusers writes an integer; a list of equal sides is accepted too.
    private static int ReadSampleSize(JsonElement size, string path)
    {
        JsonElement[] sides = size.ValueKind == JsonValueKind.Array ? [.. size.EnumerateArray()] : [size];
        int[] values = [.. sides.Select(s => s.ValueKind == JsonValueKind.Number && s.TryGetInt32(out int v) && v > 0 ? v : 0)];
        return values.Length > 0 && values[0] > 0 && values.All(v => v == values[0])
            ? values[0]
            : throw Invalid(path, "sample_size", size, "a positive integer, the latent size (64 for SD 1.x)");
    }

    private static ModelLoadException Invalid(string path, string key, JsonElement value, string expected) =>
        new($"'{path}': \"{key}\" is {value.GetRawText()}; expected {expected}. Fix or delete the configuration file.", path);

    private static JsonElement? ReadConfig(string path)
    {
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
