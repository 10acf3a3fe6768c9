using System.Globalization;
using System.Text;

namespace StableDiffusion.Cli;

/// <summary>
/// The generation settings a PNG carries in its <c>parameters</c> text chunk, in the format Stable Diffusion web UIs
/// (AUTOMATIC1111, Forge, ComfyUI importers, CivitAI) write and read:
/// <code>
/// a photo of an astronaut
/// Negative prompt: blurry
/// Steps: 50, Sampler: PNDM, CFG scale: 7.5, Seed: 42, Size: 512x512, Model: stable-diffusion-v1-5
/// </code>
/// </summary>
internal sealed record GenerationParameters
{
    public const string ChunkKeyword = "parameters";

    public required string Prompt { get; init; }

    public string? NegativePrompt { get; init; }

    public int Steps { get; init; } = 50;

    public string? Sampler { get; init; }

    public float CfgScale { get; init; } = 7.5f;

    public ulong? Seed { get; init; }

    public int Width { get; init; }

    public int Height { get; init; }

    public string? Model { get; init; }

    public double? DenoisingStrength { get; init; }

    /// <summary>Settings this tool does not use, kept so a round trip loses nothing.</summary>
    public IReadOnlyDictionary<string, string> Extra { get; init; } = new Dictionary<string, string>();

    public string Format()
    {
        var text = new StringBuilder(Prompt);
        if (!string.IsNullOrEmpty(NegativePrompt))
        {
            text.Append('\n').Append("Negative prompt: ").Append(NegativePrompt);
        }

        var fields = new List<(string, string)> { ("Steps", Invariant(Steps)) };
        if (Sampler is not null)
        {
            fields.Add(("Sampler", Sampler));
        }

        fields.Add(("CFG scale", Invariant(CfgScale)));
        if (Seed is ulong seed)
        {
            fields.Add(("Seed", Invariant(seed)));
        }

        fields.Add(("Size", $"{Width}x{Height}"));
        if (Model is not null)
        {
            fields.Add(("Model", Model));
        }

        if (DenoisingStrength is double strength)
        {
            fields.Add(("Denoising strength", Invariant(strength)));
        }

        fields.AddRange(Extra.Select(e => (e.Key, e.Value)));
        text.Append('\n').Append(string.Join(", ", fields.Select(f => $"{f.Item1}: {Quote(f.Item2)}")));
        return text.ToString();
    }

    /// <summary>Parses the text of a <c>parameters</c> chunk.</summary>
    /// <exception cref="FormatException">The text has no settings line or a setting is malformed (the message says which).</exception>
    public static GenerationParameters Parse(string text)
    {
        string[] lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        int settingsLine = Array.FindLastIndex(lines, l => l.StartsWith("Steps: ", StringComparison.Ordinal));
        if (settingsLine < 0)
        {
            throw new FormatException("The parameters have no settings line (one starting with \"Steps: \").");
        }

        var prompt = new List<string>();
        var negative = new List<string>();
        List<string> current = prompt;
        for (int i = 0; i < settingsLine; i++)
        {
            if (lines[i].StartsWith("Negative prompt: ", StringComparison.Ordinal))
            {
                current = negative;
                current.Add(lines[i]["Negative prompt: ".Length..]);
            }
            else
            {
                current.Add(lines[i]);
            }
        }

        Dictionary<string, string> settings = ParseSettings(lines[settingsLine]);
        string size = Take(settings, "Size") ?? throw new FormatException("The parameters have no Size.");
        string[] wh = size.Split('x');
        if (wh.Length != 2 || !int.TryParse(wh[0], CultureInfo.InvariantCulture, out int width) || !int.TryParse(wh[1], CultureInfo.InvariantCulture, out int height))
        {
            throw new FormatException($"Size '{size}' is not WIDTHxHEIGHT.");
        }

        return new GenerationParameters
        {
            Prompt = string.Join('\n', prompt),
            NegativePrompt = negative.Count > 0 ? string.Join('\n', negative) : null,
            Steps = ParseInt(Take(settings, "Steps") ?? throw new FormatException("The parameters have no Steps."), "Steps"),
            Sampler = SamplerWithSchedule(Take(settings, "Sampler"), settings),
            CfgScale = Take(settings, "CFG scale") is { } cfg ? ParseFloat(cfg, "CFG scale") : 7.5f,
            Seed = Take(settings, "Seed") is { } seed ? ulong.TryParse(seed, CultureInfo.InvariantCulture, out ulong s) ? s : throw new FormatException($"Seed '{seed}' is not a whole number.") : null,
            Width = width,
            Height = height,
            Model = Take(settings, "Model"),
            DenoisingStrength = Take(settings, "Denoising strength") is { } strength ? ParseDouble(strength, "Denoising strength") : null,
            Extra = settings,
        };
    }

    private static Dictionary<string, string> ParseSettings(string line)
    {
        var settings = new Dictionary<string, string>(StringComparer.Ordinal);
        int i = 0;
        while (i < line.Length)
        {
            int colon = line.IndexOf(": ", i, StringComparison.Ordinal);
            if (colon < 0)
            {
                break;
            }

            string key = line[i..colon].Trim();
            int start = colon + 2;
            string value;
            if (start < line.Length && line[start] == '"')
            {
                // A quoted value may hold commas; web UIs escape quotes inside with a backslash.
                var builder = new StringBuilder();
                int j = start + 1;
                for (; j < line.Length && line[j] != '"'; j++)
                {
                    builder.Append(line[j] == '\\' && j + 1 < line.Length ? line[++j] : line[j]);
                }

                value = builder.ToString();
                i = line.IndexOf(", ", j, StringComparison.Ordinal) is int next and >= 0 ? next + 2 : line.Length;
            }
            else
            {
                int comma = line.IndexOf(", ", start, StringComparison.Ordinal);
                value = comma < 0 ? line[start..] : line[start..comma];
                i = comma < 0 ? line.Length : comma + 2;
            }

            settings[key] = value;
        }

        return settings;
    }

    // Web UIs since AUTOMATIC1111 1.9 write the sigma schedule apart ("Sampler: DPM++ 2M, Schedule type: Karras"); the
    // scheduler names here carry it ("DPM++ 2M Karras"). Other schedule types have no equivalent and stay in Extra.
    private static string? SamplerWithSchedule(string? sampler, Dictionary<string, string> settings)
    {
        if (sampler is null || !settings.TryGetValue("Schedule type", out string? schedule))
        {
            return sampler;
        }

        if (schedule.Equals("Automatic", StringComparison.OrdinalIgnoreCase))
        {
            settings.Remove("Schedule type");
            return sampler;
        }

        if (schedule.Equals("Karras", StringComparison.OrdinalIgnoreCase))
        {
            settings.Remove("Schedule type");
            return sampler.EndsWith(" Karras", StringComparison.OrdinalIgnoreCase) ? sampler : $"{sampler} Karras";
        }

        return sampler;
    }

    private static string? Take(Dictionary<string, string> settings, string key) => settings.Remove(key, out string? value) ? value : null;

    private static int ParseInt(string value, string key) =>
        int.TryParse(value, CultureInfo.InvariantCulture, out int result) ? result : throw new FormatException($"{key} '{value}' is not a whole number.");

    private static float ParseFloat(string value, string key) =>
        float.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out float result) ? result : throw new FormatException($"{key} '{value}' is not a number.");

    // Strength stays in double precision: int(steps * strength) must see 0.7, not 0.699999988.
    private static double ParseDouble(string value, string key) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double result) ? result : throw new FormatException($"{key} '{value}' is not a number.");

    private static string Invariant(IFormattable value) => value.ToString(null, CultureInfo.InvariantCulture);

    private static string Quote(string value) =>
        value.Contains(',', StringComparison.Ordinal) || value.Contains(':', StringComparison.Ordinal) || value.Contains('"', StringComparison.Ordinal)
            ? $"\"{value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal)}\""
            : value;
}
