using System.Globalization;
using System.Text.Json;
using StableDiffusion.Models;
using StableDiffusion.Weights;

namespace StableDiffusion.Lora;

/// <summary>
/// Reads a LoRA safetensors file into <see cref="LoraEntry"/> updates, in the two layouts people have: kohya / web-UI files
/// (<c>lora_unet_*</c>, <c>lora_te_*</c> with <c>.lora_down.weight</c>, <c>.lora_up.weight</c>, <c>.alpha</c>; LoCon
/// convolutions included) and diffusers / PEFT files (<c>unet.*</c>, <c>text_encoder.*</c> with <c>.lora_A.weight</c>,
/// <c>.lora_B.weight</c>; diffusers' older <c>.lora.down.weight</c> and attention-processor names too). Keys of any other
/// kind (LyCORIS LoHa and LoKr, DoRA, full weight differences) are refused by name: a partial application would be a
/// silently wrong model.
/// </summary>
internal static class LoraFile
{
    private const string MetadataKey = "lora_adapter_metadata";

    // Suffixes of the down and up matrices and of the alpha, in the layouts read.
    private static readonly (string Suffix, Role Role)[] Suffixes =
    [
        (".lora_down.weight", Role.Down), (".lora_up.weight", Role.Up),
        (".lora_A.weight", Role.Down), (".lora_B.weight", Role.Up),
        (".lora.down.weight", Role.Down), (".lora.up.weight", Role.Up),
        (".alpha", Role.Alpha),
    ];

    // Markers of adapter kinds that are not plain LoRA, with the name users know them by.
    private static readonly (Func<string, bool> Matches, string Kind)[] OtherKinds =
    [
        (k => k.Contains("hada_w", StringComparison.Ordinal), "LyCORIS LoHa"),
        (k => k.Contains("lokr_w", StringComparison.Ordinal), "LyCORIS LoKr"),
        (k => k.Contains(".lora_mid.", StringComparison.Ordinal), "LyCORIS LoCon with a CP-decomposed middle (lora_mid)"),
        (k => k.Contains("dora_scale", StringComparison.Ordinal) || k.Contains("lora_magnitude_vector", StringComparison.Ordinal), "DoRA"),
        (k => k.EndsWith(".diff", StringComparison.Ordinal) || k.EndsWith(".diff_b", StringComparison.Ordinal), "full weight difference (diff)"),
        (k => k.Contains(".oft_", StringComparison.Ordinal) || k.Contains(".boft_", StringComparison.Ordinal), "OFT"),
    ];

    private enum Role
    {
        Down,
        Up,
        Alpha,
    }

    /// <summary>Reads <paramref name="path"/>.</summary>
    /// <exception cref="LoraLoadException">The file is missing, not safetensors, or not a LoRA file the SDK reads.</exception>
    public static IReadOnlyList<LoraEntry> Read(string path)
    {
        if (!File.Exists(path))
        {
            throw new LoraLoadException($"The LoRA file '{path}' does not exist.", path);
        }

        SafetensorsFile file;
        try
        {
            file = SafetensorsFile.Open(path);
        }
        catch (SafetensorsFormatException ex)
        {
            throw new LoraLoadException(
                $"'{path}' is not a readable safetensors file: {ex.Message} LoRA files are read from .safetensors only (a .pt or .ckpt LoRA can be converted with kohya's or diffusers' tools).",
                path, innerException: ex);
        }

        using (file)
        {
            return ReadEntries(path, file);
        }
    }

    private static List<LoraEntry> ReadEntries(string path, SafetensorsFile file)
    {
        var parts = new Dictionary<string, Dictionary<Role, SafetensorsTensor>>(StringComparer.Ordinal);
        var unknown = new List<string>();
        foreach (SafetensorsTensor tensor in file.Tensors)
        {
            (string Suffix, Role Role) match = Suffixes.FirstOrDefault(s => tensor.Name.EndsWith(s.Suffix, StringComparison.Ordinal));
            if (match.Suffix is null)
            {
                unknown.Add(tensor.Name);
                continue;
            }

            string name = tensor.Name[..^match.Suffix.Length];
            if (!parts.TryGetValue(name, out Dictionary<Role, SafetensorsTensor>? roles))
            {
                parts[name] = roles = [];
            }

            roles[match.Role] = tensor;
        }

        if (unknown.Count > 0)
        {
            string? kind = OtherKinds.FirstOrDefault(k => unknown.Any(k.Matches)).Kind;
            throw new LoraLoadException(
                (kind is null
                    ? $"'{path}' has {unknown.Count} tensors that are not LoRA weights: {Describe(unknown)}. "
                    : $"'{path}' is a {kind} adapter ({unknown.Count} tensors such as {Describe(unknown)}), which the SDK does not apply; only LoRA and LoCon files are supported. ") +
                "Nothing was applied.",
                path, unknown);
        }

        if (parts.Count == 0)
        {
            throw new LoraLoadException($"'{path}' holds no LoRA weights (no lora_down/lora_up or lora_A/lora_B tensors).", path);
        }

        Func<string, string, float?> metadataAlpha = MetadataAlphas(path, file.Metadata);
        Dictionary<string, float> alphas = parts.Where(p => p.Value.ContainsKey(Role.Alpha))
            .ToDictionary(p => p.Key, p => ReadScalar(file, p.Value[Role.Alpha], path), StringComparer.Ordinal);
        // diffusers gives a layer without an alpha the file's most common alpha, and the rank when the file has none.
        float? commonAlpha = alphas.Count == 0 ? null : alphas.Values.GroupBy(a => a).OrderByDescending(g => g.Count()).First().Key;

        var entries = new List<LoraEntry>(parts.Count);
        foreach ((string key, Dictionary<Role, SafetensorsTensor> roles) in parts.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (!roles.TryGetValue(Role.Down, out SafetensorsTensor? down) || !roles.TryGetValue(Role.Up, out SafetensorsTensor? up))
            {
                throw new LoraLoadException(
                    $"'{path}' has an incomplete LoRA layer '{key}': it needs both a down (lora_down / lora_A) and an up (lora_up / lora_B) matrix. The file may be truncated or damaged.",
                    path, [key]);
            }

            (string component, string name, bool flat) = Locate(key);
            RequireShapes(path, key, down, up);
            float alpha = alphas.TryGetValue(key, out float own) ? own : metadataAlpha(component, name) ?? commonAlpha ?? down.Shape[0];
            entries.Add(new LoraEntry(component, name, flat, key, ReadFloats(file, down), down.Shape, ReadFloats(file, up), up.Shape, alpha));
        }

        return entries;
    }

    /// <summary>The component and layer name a key prefix names; components the SDK does not know are kept for the error message.</summary>
    private static (string Component, string Name, bool Flat) Locate(string key)
    {
        foreach ((string prefix, string component) in (ReadOnlySpan<(string, string)>)[
            ("lora_unet_", ModelComponents.UNet), ("lora_te1_", "text_encoder"), ("lora_te2_", "text_encoder_2"), ("lora_te_", ModelComponents.TextEncoder)])
        {
            if (key.StartsWith(prefix, StringComparison.Ordinal))
            {
                // SDXL's first text encoder is the same CLIP model; its files are told apart by their UNet and second encoder.
                string name = key[prefix.Length..];
                return (component, name.StartsWith("text_model_", StringComparison.Ordinal) ? name["text_model_".Length..] : name, true);
            }
        }

        int dot = key.IndexOf('.', StringComparison.Ordinal);
        if (dot > 0)
        {
            string component = key[..dot];
            string name = key[(dot + 1)..];
            if (name.StartsWith("text_model.", StringComparison.Ordinal))
            {
                name = name["text_model.".Length..];
            }

            return (component, ProcessorToModule(name), false);
        }

        return (string.Empty, key, false);
    }

    /// <summary>diffusers' older attention-processor names (<c>attn1.processor.to_q_lora</c>) as module paths (<c>attn1.to_q</c>).</summary>
    private static string ProcessorToModule(string name) => !name.Contains(".processor.", StringComparison.Ordinal)
        ? name
        : name.Replace(".processor.", ".", StringComparison.Ordinal)
            .Replace("to_out_lora", "to_out.0", StringComparison.Ordinal)
            .Replace("_lora", string.Empty, StringComparison.Ordinal);

    private static void RequireShapes(string path, string key, SafetensorsTensor down, SafetensorsTensor up)
    {
        bool downOk = down.Shape.Length is 2 or 4 && down.Shape[0] > 0;
        bool upOk = up.Shape.Length == down.Shape.Length && up.Shape.Length is 2 or 4 && up.Shape[1] == down.Shape[0] && up.Shape.Skip(2).All(d => d == 1);
        if (!downOk || !upOk)
        {
            throw new LoraLoadException(
                $"LoRA layer '{key}' of '{path}' has matrices of shapes down {down.Description} and up {up.Description}; a LoRA layer has down [rank, in] and up [out, rank] " +
                "(convolutions: down [rank, in, kh, kw] and up [out, rank, 1, 1]).", path, [key]);
        }

        if (!FloatConversion.IsSupported(down.ElementType) || !FloatConversion.IsSupported(up.ElementType))
        {
            throw new LoraLoadException($"LoRA layer '{key}' of '{path}' is stored as {down.DType}; LoRA weights must be F32, F16 or BF16.", path, [key]);
        }
    }

    private static float[] ReadFloats(SafetensorsFile file, SafetensorsTensor tensor)
    {
        var values = new float[tensor.ElementCount];
        TorchCheckpointTensor.ToSingle(tensor.ElementType, file.GetBytes(tensor), values);
        return values;
    }

    private static float ReadScalar(SafetensorsFile file, SafetensorsTensor tensor, string path)
    {
        if (tensor.ElementCount != 1 || !FloatConversion.IsSupported(tensor.ElementType))
        {
            throw new LoraLoadException($"The alpha '{tensor.Name}' of '{path}' is {tensor.Description}; an alpha is one floating-point number.", path, [tensor.Name]);
        }

        return ReadFloats(file, tensor)[0];
    }

    /// <summary>
    /// The alphas diffusers writes into a file's metadata (<c>lora_adapter_metadata</c>: the PEFT configuration of each
    /// component under its prefix, <c>unet.lora_alpha</c> and <c>unet.alpha_pattern</c>), by component and layer; null where it says nothing.
    /// </summary>
    private static Func<string, string, float?> MetadataAlphas(string path, IReadOnlyDictionary<string, string> metadata)
    {
        if (!metadata.TryGetValue(MetadataKey, out string? json))
        {
            return (_, _) => null;
        }

        JsonElement root;
        try
        {
            root = JsonDocument.Parse(json).RootElement.Clone();
        }
        catch (JsonException ex)
        {
            throw new LoraLoadException($"The {MetadataKey} metadata of '{path}' is not valid JSON: {ex.Message}", path, innerException: ex);
        }

        return (component, name) =>
        {
            if (root.ValueKind != JsonValueKind.Object)
            {
                return null;
            }

            if (root.TryGetProperty($"{component}.alpha_pattern", out JsonElement pattern) && pattern.ValueKind == JsonValueKind.Object)
            {
                foreach (JsonProperty entry in pattern.EnumerateObject())
                {
                    if ((name == entry.Name || name.EndsWith("." + entry.Name, StringComparison.Ordinal)) && entry.Value.ValueKind == JsonValueKind.Number)
                    {
                        return entry.Value.GetSingle();
                    }
                }
            }

            return root.TryGetProperty($"{component}.lora_alpha", out JsonElement alpha) && alpha.ValueKind == JsonValueKind.Number
                ? alpha.GetSingle()
                : null;
        };
    }

    /// <summary>The first keys of a list for a message, with how many more there are.</summary>
    public static string Describe(IReadOnlyList<string> keys) =>
        string.Join(", ", keys.Take(8).Select(k => $"'{k}'")) + (keys.Count > 8 ? string.Create(CultureInfo.InvariantCulture, $" and {keys.Count - 8} more") : string.Empty);
}
