using System.Globalization;
using StableDiffusion.Models;

namespace StableDiffusion.Lora;

/// <summary>A LoRA file matched to the layers of a model: every update with the weight it changes.</summary>
internal sealed class LoraAdapter
{
    private LoraAdapter(string name, IReadOnlyList<(LoraEntry Entry, LoraTarget Target)> layers)
    {
        Name = name;
        Layers = layers;
        Components = layers.Select(l => l.Entry.Component).ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>The adapter name.</summary>
    public string Name { get; }

    /// <summary>The updates with the weights they change.</summary>
    public IReadOnlyList<(LoraEntry Entry, LoraTarget Target)> Layers { get; }

    /// <summary>The components it changes (looked up at every generation, so computed once).</summary>
    public IReadOnlySet<string> Components { get; }

    /// <summary>
    /// Matches every entry of a file to a layer of the model's graphs. Any entry that matches nothing, or whose shape
    /// contradicts its layer's, fails the whole file: a partly applied LoRA would be a silently different model.
    /// </summary>
    /// <exception cref="LoraLoadException">Entries match no layer, or do not fit the layers they name.</exception>
    public static LoraAdapter Resolve(string name, string path, IReadOnlyList<LoraEntry> entries, IReadOnlyDictionary<string, LoraTargets> targets)
    {
        var layers = new List<(LoraEntry, LoraTarget)>(entries.Count);
        var unmatched = new List<string>();
        var misfits = new List<string>();
        var shared = new List<string>();
        foreach (LoraEntry entry in entries)
        {
            LoraTarget? target = targets.TryGetValue(entry.Component, out LoraTargets? graph) ? graph.Find(entry) : null;
            if (target is null)
            {
                unmatched.Add(entry.Key);
            }
            else if (Misfit(entry, target) is { } why)
            {
                misfits.Add($"'{entry.Key}' ({why})");
            }
            else if (target.SharedWith is not null)
            {
                shared.Add($"'{entry.Key}' ({target.Module} shares its weight with {target.SharedWith})");
            }
            else
            {
                layers.Add((entry, target));
            }
        }

        string? looksLike = ArchitectureGuess(entries, targets);
        if (unmatched.Count > 0)
        {
            throw new LoraLoadException(
                $"The LoRA '{path}' does not fit this model: {unmatched.Count} of its {entries.Count} layers match no layer of the " +
                $"{string.Join(" or ", targets.Keys)}: {LoraFile.Describe(unmatched)}. " +
                (looksLike ?? "Its layer names are not those of a Stable Diffusion 1.x UNet or CLIP text encoder.") +
                " Nothing was applied; use a LoRA made for this model.", path, unmatched);
        }

        if (misfits.Count > 0)
        {
            throw new LoraLoadException(
                $"The LoRA '{path}' does not fit this model: {misfits.Count} layers have other sizes than the model's: {string.Join(", ", misfits.Take(6))}" +
                $"{(misfits.Count > 6 ? $" and {misfits.Count - 6} more" : string.Empty)}. {looksLike ?? string.Empty} Nothing was applied; use a LoRA made for this model.",
                path, [.. misfits]);
        }

        if (shared.Count > 0)
        {
            throw new LoraLoadException(
                $"The LoRA '{path}' changes layers whose weights the model's exporter stored once for several layers: {string.Join(", ", shared.Take(6))}. " +
                "Changing one would change the others too; nothing was applied. Export the model without weight deduplication, or load it from its diffusers weights.",
                path, [.. shared]);
        }

        return new LoraAdapter(name, layers);
    }

    /// <summary>Why an entry's matrices cannot change <paramref name="target"/>, or null when they fit.</summary>
    private static string? Misfit(LoraEntry entry, LoraTarget target)
    {
        long outFeatures = entry.OutFeatures;
        long inFeatures = entry.InFeatures;
        string lora = string.Create(CultureInfo.InvariantCulture, $"the LoRA changes a [{outFeatures}, {string.Join(", ", entry.DownShape.Skip(1))}] weight");
        string model = $"the model's {target.Module} is [{string.Join(", ", target.Transposed ? target.Shape.Reverse() : target.Shape)}]";
        if (target.ElementCount != outFeatures * inFeatures)
        {
            return $"{lora}, {model}";
        }

        bool fits = target.Shape.Length switch
        {
            2 => target.Transposed ? target.Shape[0] == inFeatures && target.Shape[1] == outFeatures : target.Shape[0] == outFeatures && target.Shape[1] == inFeatures,
            4 when entry.DownShape.Length == 4 => target.Shape[0] == outFeatures && target.Shape.AsSpan(1).SequenceEqual(entry.DownShape.AsSpan(1)),
            _ => !target.Transposed, // a view of the stored matrix in another shape (a packed projection): same elements, same order
        };
        return fits ? null : $"{lora}, {model}";
    }

    /// <summary>Which model the file seems made for, from its names and widths; null when nothing points elsewhere.</summary>
    private static string? ArchitectureGuess(IReadOnlyList<LoraEntry> entries, IReadOnlyDictionary<string, LoraTargets> targets)
    {
        if (entries.Any(e => e.Component == "text_encoder_2" || e.Key.StartsWith("lora_te1_", StringComparison.Ordinal) ||
            e.Name.Contains("add_embedding", StringComparison.Ordinal) || e.Name.Contains("label_emb", StringComparison.Ordinal)))
        {
            return "It looks like an SDXL LoRA (it has layers for a second text encoder or SDXL's added embeddings); this pipeline runs Stable Diffusion 1.x.";
        }

        long? crossWidth = entries.FirstOrDefault(e => e.Component == ModelComponents.UNet &&
            (e.Name.EndsWith("attn2.to_k", StringComparison.Ordinal) || e.Name.EndsWith("attn2_to_k", StringComparison.Ordinal)))?.InFeatures;
        long? modelWidth = targets.GetValueOrDefault(ModelComponents.UNet)?.Modules.Values.FirstOrDefault(t => t.Module.EndsWith("attn2.to_k", StringComparison.Ordinal)) is { } toK
            ? toK.Transposed ? toK.Shape[0] : toK.Shape[^1]
            : null;
        if (crossWidth is long width && width != modelWidth)
        {
            string kind = width switch { 2048 => "an SDXL LoRA", 1024 => "an SD 2.x LoRA", 768 => "an SD 1.x LoRA", _ => $"a LoRA for a model with {width}-wide text embeddings" };
            return $"It looks like {kind}: its cross-attention takes {width}-wide text embeddings{(modelWidth is long m ? $", this model's {m}" : string.Empty)}.";
        }

        if (entries.Any(e => e.Name.Contains("input_blocks", StringComparison.Ordinal) || e.Name.Contains("output_blocks", StringComparison.Ordinal) || e.Name.Contains("middle_block", StringComparison.Ordinal)))
        {
            return "Its UNet layers have the original (LDM/SGM) names kohya uses for SDXL; SD 1.x LoRAs name them as diffusers does (down_blocks, mid_block, up_blocks).";
        }

        return null;
    }
}
