using StableDiffusion.Lora;
using StableDiffusion.Models;

namespace StableDiffusion.Loading;

/// <summary>
/// LoRA on the loaded components: the adapters, and the text encoder and UNet sessions rebuilt with merged weights
/// whenever a call needs other weights than the current sessions have.
/// </summary>
/// <remarks>
/// Merged weights reach ONNX Runtime inside an in-memory copy of the component's base graph (<see cref="GraphSource"/>, the
/// same for ONNX exports, diffusers folders and single files; <see cref="LoraTargets.MergedGraph"/>: ONNX Runtime's .NET API
/// cannot replace an initializer before constant folding): files on disk are never written, and the base weights stay in
/// them, so taking an adapter off restores the original weights exactly. Calls that need the same weights run together;
/// a call that needs other weights (another per-call scale, a changed adapter) waits until the calls in flight finish,
/// then rebuilds only the sessions whose weights differ.
/// </remarks>
internal sealed partial class StableDiffusionComponents
{
    private static readonly string[] LoraComponents = [ModelComponents.TextEncoder, ModelComponents.UNet];

    private readonly object _loraGate = new();
    private readonly LoraState _lora = new();
    private readonly Dictionary<string, IReadOnlyList<LoraContribution>> _appliedLora = new(StringComparer.Ordinal);
    private Dictionary<string, LoraTargets>? _loraTargets;
    private int _loraUsers;

    /// <summary>Changes the LoRA state under the gate (the sessions follow at the next call).</summary>
    public T UpdateLora<T>(Func<LoraState, T> change)
    {
        lock (_loraGate)
        {
            return change(_lora);
        }
    }

    /// <summary>Reads a LoRA file and adds it as an adapter, or fails with nothing applied.</summary>
    public string LoadLora(string path, string? adapterName)
    {
        IReadOnlyList<LoraEntry> entries = LoraFile.Read(path);
        lock (_loraGate)
        {
            string name = adapterName ?? _lora.DefaultName();
            if (_lora.Contains(name))
            {
                throw new ArgumentException($"A LoRA adapter named '{name}' is loaded already; choose another name, or call UnloadLoraWeights first.", nameof(adapterName));
            }

            _lora.Add(LoraAdapter.Resolve(name, path, entries, LoraTargetsByComponent()));
            return name;
        }
    }

    /// <summary>
    /// Holds the sessions for one call at LoRA scale <paramref name="loraScale"/>: rebuilds those whose weights must change
    /// once no other call uses them, and keeps them until the returned lease is disposed.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The scale is not a finite number.</exception>
    public IDisposable UseLora(float? loraScale)
    {
        float scale = loraScale ?? 1f;
        if (!float.IsFinite(scale))
        {
            throw new ArgumentOutOfRangeException(nameof(loraScale), loraScale, "LoraScale must be a finite number (1 when not set).");
        }

        lock (_loraGate)
        {
            while (true)
            {
                var stale = new List<(string Component, IReadOnlyList<LoraContribution> Wanted)>();
                foreach (string component in LoraComponents)
                {
                    IReadOnlyList<LoraContribution> wanted = _lora.Contributions(component, scale);
                    if (!SameContributions(_appliedLora.GetValueOrDefault(component) ?? [], wanted))
                    {
                        stale.Add((component, wanted));
                    }
                }

                if (stale.Count == 0 || _loraUsers == 0)
                {
                    foreach ((string component, IReadOnlyList<LoraContribution> wanted) in stale)
                    {
                        Rebuild(component, wanted);
                    }

                    _loraUsers++;
                    return new LoraLease(this);
                }

                Monitor.Wait(_loraGate);
            }
        }
    }

    /// <summary>Rebuilds <paramref name="component"/>'s session with its weights merged from <paramref name="contributions"/>.</summary>
    private void Rebuild(string component, IReadOnlyList<LoraContribution> contributions)
    {
        if (component == ModelComponents.TextEncoder)
        {
            // The text encoder may also carry clip skip outputs and textual inversions: its one rebuild path keeps them.
            SetTextEncoderLora(contributions);
        }
        else
        {
            BuiltGraph merged = LoraTargetsByComponent()[component].MergedGraph(GraphSource(component), contributions);
            Replace(component, UNet.Rebuilt(merged));
        }

        _appliedLora[component] = contributions;
    }

    private Dictionary<string, LoraTargets> LoraTargetsByComponent()
    {
        if (_loraTargets is null)
        {
            var targets = new Dictionary<string, LoraTargets>(StringComparer.Ordinal);
            foreach (string component in LoraComponents)
            {
                BuiltGraph source = GraphSource(component);
                try
                {
                    targets[component] = LoraTargets.Read(component, source);
                }
                catch (InvalidDataException ex)
                {
                    throw new ModelLoadException($"The {component} graph '{source.Path}' cannot be read to apply a LoRA: {ex.Message}", source.Path, ex);
                }
            }

            _loraTargets = targets;
        }

        return _loraTargets;
    }

    private static bool SameContributions(IReadOnlyList<LoraContribution> a, IReadOnlyList<LoraContribution> b) =>
        a.Count == b.Count && a.Zip(b).All(p => ReferenceEquals(p.First.Adapter, p.Second.Adapter) && p.First.Factor == p.Second.Factor);

    private void ReleaseLora()
    {
        lock (_loraGate)
        {
            _loraUsers--;
            Monitor.PulseAll(_loraGate);
        }
    }

    private sealed class LoraLease(StableDiffusionComponents owner) : IDisposable
    {
        private StableDiffusionComponents? _owner = owner;

        public void Dispose() => Interlocked.Exchange(ref _owner, null)?.ReleaseLora();
    }
}
