using System.Globalization;
using System.Text;
using StableDiffusion.Imaging;

namespace StableDiffusion.Pipelines;

/// <summary>
/// The settings of one generated image, as PNGs carry them in their <c>parameters</c> text chunk in the format Stable
/// Diffusion web UIs (AUTOMATIC1111, Forge, ComfyUI importers, CivitAI) write and read, the "infotext":
/// <code>
/// a photo of an astronaut
/// Negative prompt: blurry
/// Steps: 50, Sampler: PNDM, CFG scale: 7.5, Seed: 42, Size: 512x512, Model: stable-diffusion-v1-5
/// </code>
/// <see cref="GenerationResult.Parameters"/> gives them per image, <see cref="RgbImage.SaveAsPng(string, GenerationParameters?)"/>
/// writes them, and <see cref="FromPng(string)"/> reads them back from a PNG written here or by a web UI.
/// </summary>
public sealed record GenerationParameters
{
    /// <summary>The keyword of the PNG text chunk that holds the parameters.</summary>
    public const string PngKeyword = "parameters";

    /// <summary>The prompt (empty when the generation was driven by prompt embeddings).</summary>
    public required string Prompt { get; init; }

    /// <summary>The negative prompt, if any.</summary>
    public string? NegativePrompt { get; init; }

    /// <summary>The number of denoising steps ("Steps").</summary>
    public int NumInferenceSteps { get; init; } = 50;

    /// <summary>The scheduler under its web UI name ("Euler a", "DPM++ 2M Karras"), or its diffusers class name when no
    /// web UI name fits ("Sampler").</summary>
    public string? Sampler { get; init; }

    /// <summary>The classifier-free guidance scale ("CFG scale").</summary>
    public float GuidanceScale { get; init; } = 7.5f;

    /// <summary>The seed, when the generation was seeded ("Seed").</summary>
    public ulong? Seed { get; init; }

    /// <summary>The image width in pixels ("Size").</summary>
    public int Width { get; init; }

    /// <summary>The image height in pixels ("Size").</summary>
    public int Height { get; init; }

    /// <summary>The model: a Hugging Face repository id or a folder ("Model").</summary>
    public string? Model { get; init; }

    /// <summary>How much an image-to-image or inpainting generation changed its input ("Denoising strength"); null for
    /// text-to-image.</summary>
    public double? Strength { get; init; }

    /// <summary>
    /// diffusers' <c>clip_skip</c> (<see cref="DiffusionRequest.ClipSkip"/>), null for none. Written as web UIs count it,
    /// from 1 for no skip: clip skip 1 here is "Clip skip: 2".
    /// </summary>
    public int? ClipSkip { get; init; }

    /// <summary>
    /// The textual inversions the prompts use, by token, with the first 12 hex digits of each file's SHA-256 ("TI hashes",
    /// as AUTOMATIC1111 writes it), so that a reader can find the same embeddings.
    /// </summary>
    public IReadOnlyDictionary<string, string> TextualInversionHashes { get; init; } = new Dictionary<string, string>();

    /// <summary>Other settings, by their web UI names ("Clip skip", "Version", ...), kept so that a round trip loses nothing.</summary>
    public IReadOnlyDictionary<string, string> Extra { get; init; } = new Dictionary<string, string>();

    /// <summary>Reads the parameters from a PNG file's <c>parameters</c> text chunk, without decoding the image.</summary>
    /// <param name="path">The PNG file.</param>
    /// <returns>The parameters, or null when the PNG has no <c>parameters</c> chunk.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a PNG, or is truncated or corrupt.</exception>
    /// <exception cref="FormatException">The chunk's text is not in the web UI format (the message says what is wrong).</exception>
    public static GenerationParameters? FromPng(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        return FromPng(file);
    }

    /// <summary>Reads the parameters from a PNG stream's <c>parameters</c> text chunk, without decoding the image.</summary>
    /// <param name="png">The PNG, read from its current position.</param>
    /// <returns>The parameters, or null when the PNG has no <c>parameters</c> chunk.</returns>
    /// <exception cref="InvalidDataException">The stream is not a PNG, or is truncated or corrupt.</exception>
    /// <exception cref="FormatException">The chunk's text is not in the web UI format (the message says what is wrong).</exception>
    public static GenerationParameters? FromPng(Stream png)
    {
        ArgumentNullException.ThrowIfNull(png);
        return PngTextReader.Read(png, PngKeyword) is { } text ? Parse(text) : null;
    }

    /// <summary>The parameters as web UIs write them: the prompt, a "Negative prompt:" line, then one line of settings.</summary>
    public override string ToString()
    {
        var text = new StringBuilder(Prompt);
        if (!string.IsNullOrEmpty(NegativePrompt))
        {
            text.Append('\n').Append("Negative prompt: ").Append(NegativePrompt);
        }

        var fields = new List<(string, string)> { ("Steps", Invariant(NumInferenceSteps)) };
        if (Sampler is not null)
        {
            fields.Add(("Sampler", Sampler));
        }

        fields.Add(("CFG scale", Invariant(GuidanceScale)));
        if (Seed is ulong seed)
        {
            fields.Add(("Seed", Invariant(seed)));
        }

        fields.Add(("Size", $"{Width}x{Height}"));
        if (Model is not null)
        {
            fields.Add(("Model", Model));
        }

        if (Strength is double strength)
        {
            fields.Add(("Denoising strength", Invariant(strength)));
        }

        if (ClipSkip is int clipSkip)
        {
            fields.Add((ClipSkipKey, Invariant(clipSkip + 1)));
        }

        if (TextualInversionHashes.Count > 0)
        {
            fields.Add((TextualInversionHashesKey, string.Join(", ", TextualInversionHashes.Select(h => $"{h.Key}: {h.Value}"))));
        }

        fields.AddRange(Extra.Select(e => (e.Key, e.Value)));
        text.Append('\n').Append(string.Join(", ", fields.Select(f => $"{f.Item1}: {Quote(f.Item2)}")));
        return text.ToString();
    }

    /// <summary>Parses the text of a <c>parameters</c> chunk, as web UIs and <see cref="ToString"/> write it.</summary>
    /// <param name="text">The text.</param>
    /// <exception cref="FormatException">The text has no settings line or a setting is malformed (the message says which).</exception>
    public static GenerationParameters Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
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
            NumInferenceSteps = ParseInt(Take(settings, "Steps") ?? throw new FormatException("The parameters have no Steps."), "Steps"),
            Sampler = SamplerWithSchedule(Take(settings, "Sampler"), settings),
            GuidanceScale = Take(settings, "CFG scale") is { } cfg ? ParseFloat(cfg, "CFG scale") : 7.5f,
            Seed = Take(settings, "Seed") is { } seed ? ulong.TryParse(seed, CultureInfo.InvariantCulture, out ulong s) ? s : throw new FormatException($"Seed '{seed}' is not a whole number.") : null,
            Width = width,
            Height = height,
            Model = Take(settings, "Model"),
            Strength = Take(settings, "Denoising strength") is { } strength ? ParseDouble(strength, "Denoising strength") : null,
            ClipSkip = Take(settings, ClipSkipKey) is { } clipSkip ? ParseInt(clipSkip, ClipSkipKey) is var layers and > 1 ? layers - 1 : null : null,
            TextualInversionHashes = Take(settings, TextualInversionHashesKey) is { } hashes ? ParseHashes(hashes) : new Dictionary<string, string>(),
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

    private const string ClipSkipKey = "Clip skip";
    private const string TextualInversionHashesKey = "TI hashes";

    // "token: hash, token: hash"; a token may hold ": " itself, so each entry splits at its last one.
    private static Dictionary<string, string> ParseHashes(string text)
    {
        var hashes = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string entry in text.Split(", ", StringSplitOptions.RemoveEmptyEntries))
        {
            int colon = entry.LastIndexOf(": ", StringComparison.Ordinal);
            if (colon <= 0)
            {
                throw new FormatException($"TI hashes entry '{entry}' is not 'name: hash'.");
            }

            hashes[entry[..colon]] = entry[(colon + 2)..];
        }

        return hashes;
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
