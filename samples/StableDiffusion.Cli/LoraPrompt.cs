using System.Globalization;
using System.Text.RegularExpressions;
using StableDiffusion.Pipelines;

namespace StableDiffusion.Cli;

/// <summary>One LoRA to apply: its adapter name, file and weight.</summary>
internal sealed record LoraRequest(string Name, string Path, float Scale);

/// <summary>
/// LoRAs on the command line as web UIs take them: <c>--lora file[:scale]</c>, and <c>&lt;lora:name:scale&gt;</c> tags in the
/// prompt, found as <c>name.safetensors</c> in <c>--lora-dir</c>. Tags are taken out of the text the model sees and kept in
/// the prompt the PNG records; <c>--lora</c> files are recorded as tags too, so <c>--from-png</c> reads them all back.
/// </summary>
internal static partial class LoraPrompt
{
    /// <summary>Parses a <c>--lora</c> value: a file, optionally followed by <c>:scale</c>.</summary>
    /// <exception cref="CliUsageException">The file does not exist.</exception>
    public static LoraRequest FromOption(string value)
    {
        string path = value;
        float scale = 1f;
        int colon = value.LastIndexOf(':');
        if (colon > 0 && float.TryParse(value.AsSpan(colon + 1), NumberStyles.Float, CultureInfo.InvariantCulture, out float parsed))
        {
            (path, scale) = (value[..colon], parsed);
        }

        if (!File.Exists(path))
        {
            throw new CliUsageException($"--lora: '{path}' does not exist (give a .safetensors file, optionally followed by :scale, e.g. --lora style.safetensors:0.8).");
        }

        return new LoraRequest(Path.GetFileNameWithoutExtension(path), Path.GetFullPath(path), CheckScale(scale, $"--lora {value}"));
    }

    /// <summary>
    /// The prompt without its <c>&lt;lora:name:scale&gt;</c> tags (what the model sees), and the LoRAs they name, found in
    /// <paramref name="loraDirectory"/>.
    /// </summary>
    /// <exception cref="CliUsageException">A tag's scale is not a number, or its file is missing.</exception>
    public static (string Prompt, IReadOnlyList<LoraRequest> Loras) TakeTags(string prompt, string loraDirectory)
    {
        var loras = new List<LoraRequest>();
        foreach (Match tag in Tag().Matches(prompt))
        {
            string name = tag.Groups["name"].Value.Trim();
            string scaleText = tag.Groups["scale"].Success ? tag.Groups["scale"].Value : "1";
            if (!float.TryParse(scaleText, NumberStyles.Float, CultureInfo.InvariantCulture, out float scale))
            {
                throw new CliUsageException($"The prompt's {tag.Value} has the weight '{scaleText}'; write <lora:name:0.8>.");
            }

            string path = Path.Combine(loraDirectory, name + ".safetensors");
            if (!File.Exists(path))
            {
                throw new CliUsageException(
                    $"The prompt's {tag.Value} names a LoRA that is not in '{Path.GetFullPath(loraDirectory)}' ({name}.safetensors); pass --lora-dir with the folder that holds it.");
            }

            loras.Add(new LoraRequest(name, Path.GetFullPath(path), CheckScale(scale, tag.Value)));
        }

        if (loras.Count == 0)
        {
            return (prompt, loras); // a prompt without tags reaches the model as typed, punctuation and spacing included
        }

        string text = Tag().Replace(prompt, string.Empty);
        return (Spaces().Replace(text, " ").Trim(' ', ','), loras);
    }

    /// <summary>The prompt as the PNG records it: as typed, with a tag for each <c>--lora</c> file.</summary>
    public static string Recorded(string prompt, IEnumerable<LoraRequest> fromOptions) =>
        string.Concat(prompt, string.Concat(fromOptions.Select(l => string.Create(CultureInfo.InvariantCulture, $" <lora:{l.Name}:{l.Scale}>"))));

    /// <summary>Loads the LoRAs into the pipeline and makes exactly them active at their weights.</summary>
    /// <exception cref="CliUsageException">Two LoRAs have one name.</exception>
    public static void Apply(DiffusionPipeline pipe, IReadOnlyList<LoraRequest> loras)
    {
        if (loras.Count == 0)
        {
            return;
        }

        if (loras.GroupBy(l => l.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } twice)
        {
            throw new CliUsageException($"The LoRA '{twice.Key}' is asked for twice (by --lora or a <lora:...> tag); give each once, with the weight you want.");
        }

        foreach (LoraRequest lora in loras)
        {
            pipe.LoadLoraWeights(lora.Path, lora.Name);
        }

        pipe.SetAdapters([.. loras.Select(l => l.Name)], [.. loras.Select(l => l.Scale)]);
    }

    private static float CheckScale(float scale, string where) =>
        float.IsFinite(scale) ? scale : throw new CliUsageException($"{where}: the weight must be a finite number.");

    // <lora:name> or <lora:name:weight>; web UIs' further per-part weights (<lora:name:te:unet>) are not taken.
    [GeneratedRegex(@"<lora:(?<name>[^:<>]+)(?::(?<scale>[^:<>]*))?>", RegexOptions.CultureInvariant)]
    private static partial Regex Tag();

    [GeneratedRegex(@"\s{2,}")]
    private static partial Regex Spaces();
}
