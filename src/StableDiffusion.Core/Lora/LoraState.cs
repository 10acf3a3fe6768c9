namespace StableDiffusion.Lora;

/// <summary>One adapter's share in a weight: its update times <see cref="Factor"/>.</summary>
/// <param name="Adapter">The adapter.</param>
/// <param name="Factor">Its weight times the scale (or its fusing scale).</param>
internal readonly record struct LoraContribution(LoraAdapter Adapter, float Factor);

/// <summary>
/// The LoRA adapters of a model and how they are used, as diffusers keeps them: loaded adapters by name, the active ones
/// with their weights (<c>set_adapters</c>), and the ones fused into the weights (<c>fuse_lora</c>), which no per-call
/// scale changes and which stay after <c>unload_lora_weights</c> (diffusers' way to keep a fused LoRA).
/// Not thread-safe: its owner serializes access.
/// </summary>
internal sealed class LoraState
{
    private readonly List<LoraAdapter> _adapters = [];
    private readonly List<(string Name, float Weight)> _active = [];
    private readonly List<LoraContribution> _fused = [];

    /// <summary>The loaded adapters' names, in loading order.</summary>
    public IReadOnlyList<string> AdapterNames => [.. _adapters.Select(a => a.Name)];

    /// <summary>The active adapters' names.</summary>
    public IReadOnlyList<string> ActiveAdapters => [.. _active.Select(a => a.Name)];

    /// <summary>Whether an adapter has this name.</summary>
    public bool Contains(string name) => _adapters.Any(a => a.Name == name);

    /// <summary>A name for an unnamed adapter: diffusers' <c>default_0</c>, <c>default_1</c>, ...</summary>
    public string DefaultName()
    {
        int index = 0;
        while (Contains($"default_{index}"))
        {
            index++;
        }

        return $"default_{index}";
    }

    /// <summary>Adds an adapter and makes it active (weight 1) beside the active ones.</summary>
    public void Add(LoraAdapter adapter)
    {
        _adapters.Add(adapter);
        _active.Add((adapter.Name, 1f));
    }

    /// <summary>Makes exactly these adapters active with these weights.</summary>
    /// <exception cref="ArgumentException">A name is unknown or repeated, or the counts differ.</exception>
    public void SetActive(IReadOnlyList<string> names, IReadOnlyList<float>? weights)
    {
        if (weights is not null && weights.Count != names.Count)
        {
            throw new ArgumentException($"{weights.Count} adapter weights were given for {names.Count} adapters; give one per adapter, or none for 1 each.", nameof(weights));
        }

        for (int i = 0; i < names.Count; i++)
        {
            if (!Contains(names[i]))
            {
                throw new ArgumentException(
                    $"There is no LoRA adapter named '{names[i]}'. Loaded adapters: {(_adapters.Count == 0 ? "none" : string.Join(", ", _adapters.Select(a => $"'{a.Name}'")))}.", nameof(names));
            }

            if (names.Take(i).Contains(names[i], StringComparer.Ordinal))
            {
                throw new ArgumentException($"The adapter '{names[i]}' is named twice.", nameof(names));
            }

            if (weights is not null && !float.IsFinite(weights[i]))
            {
                throw new ArgumentOutOfRangeException(nameof(weights), weights[i], $"The weight of adapter '{names[i]}' must be a finite number.");
            }
        }

        _active.Clear();
        _active.AddRange(names.Select((n, i) => (n, weights?[i] ?? 1f)));
    }

    /// <summary>Fuses the named (or the active) adapters at their weights times <paramref name="scale"/>.</summary>
    /// <exception cref="InvalidOperationException">There is nothing to fuse, or an adapter is fused already.</exception>
    public void Fuse(float scale, IReadOnlyList<string>? names)
    {
        IReadOnlyList<(string Name, float Weight)> chosen = names is null
            ? _active
            : [.. names.Select(n => Contains(n)
                ? (n, _active.Where(a => a.Name == n).Select(a => a.Weight).DefaultIfEmpty(1f).First())
                : throw new ArgumentException($"There is no LoRA adapter named '{n}' to fuse.", nameof(names)))];
        if (chosen.Count == 0)
        {
            throw new InvalidOperationException("There is no active LoRA adapter to fuse: load one with LoadLoraWeights, or name the adapters to fuse.");
        }

        foreach ((string name, float weight) in chosen)
        {
            LoraAdapter adapter = _adapters.First(a => a.Name == name);
            if (_fused.Any(f => ReferenceEquals(f.Adapter, adapter)))
            {
                throw new InvalidOperationException($"The LoRA adapter '{name}' is fused already; call UnfuseLora first to fuse it at another scale.");
            }

            _fused.Add(new LoraContribution(adapter, weight * scale));
        }
    }

    /// <summary>Takes the fused updates of the adapters still loaded out of the weights again.</summary>
    public void Unfuse() => _fused.RemoveAll(f => _adapters.Contains(f.Adapter));

    /// <summary>Removes every adapter; fused updates stay in the weights, as diffusers keeps them.</summary>
    public void Unload()
    {
        _adapters.Clear();
        _active.Clear();
    }

    /// <summary>
    /// What each weight of <paramref name="component"/> is made of for a call at <paramref name="scale"/>: the fused updates,
    /// then the active adapters that are not fused at their weight times the scale. Zero shares are left out, so a scale
    /// of 0 gives the base weights exactly.
    /// </summary>
    public IReadOnlyList<LoraContribution> Contributions(string component, float scale)
    {
        var contributions = new List<LoraContribution>();
        foreach (LoraContribution fused in _fused)
        {
            if (fused.Factor != 0 && fused.Adapter.Components.Contains(component))
            {
                contributions.Add(fused);
            }
        }

        foreach ((string name, float weight) in _active)
        {
            LoraAdapter adapter = _adapters.First(a => a.Name == name);
            if (weight * scale != 0 && !_fused.Any(f => ReferenceEquals(f.Adapter, adapter)) && adapter.Components.Contains(component))
            {
                contributions.Add(new LoraContribution(adapter, weight * scale));
            }
        }

        return contributions;
    }
}
