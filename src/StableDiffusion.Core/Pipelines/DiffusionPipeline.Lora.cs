using StableDiffusion.Lora;

namespace StableDiffusion.Pipelines;

/// <summary>LoRA adapters, with diffusers' loader API (<c>load_lora_weights</c>, <c>set_adapters</c>, <c>fuse_lora</c>, ...).</summary>
public abstract partial class DiffusionPipeline
{
    /// <summary>
    /// Loads a LoRA file for the UNet and the text encoder (diffusers' <c>load_lora_weights</c>) and makes it active at
    /// weight 1 beside the adapters active already; <see cref="SetAdapters"/> chooses others. Reads kohya / web-UI files
    /// (<c>lora_unet_*</c>, <c>lora_te_*</c>, LoCon convolutions included) and diffusers / PEFT files (<c>unet.*</c>,
    /// <c>text_encoder.*</c>). The model's files are never changed: the sessions whose weights change are rebuilt with
    /// merged weights (in single precision, then cast to the model's) at the next call.
    /// </summary>
    /// <param name="path">The <c>.safetensors</c> file.</param>
    /// <param name="adapterName">The adapter's name; null for diffusers' <c>default_0</c>, <c>default_1</c>, ...</param>
    /// <returns>The adapter's name.</returns>
    /// <exception cref="LoraLoadException">The file is not a LoRA the SDK reads, is made for another architecture, or has
    /// layers that match nothing in this model (listed in <see cref="LoraLoadException.UnmatchedKeys"/>); nothing is applied.</exception>
    /// <exception cref="ArgumentException">An adapter of that name is loaded already.</exception>
    public string LoadLoraWeights(string path, string? adapterName = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (adapterName is not null)
        {
            ArgumentException.ThrowIfNullOrWhiteSpace(adapterName);
        }

        ThrowIfDisposed();
        return Components.LoadLora(Path.GetFullPath(path), adapterName);
    }

    /// <summary>Makes exactly <paramref name="adapterNames"/> active, with <paramref name="adapterWeights"/> (diffusers' <c>set_adapters</c>).</summary>
    /// <param name="adapterNames">The adapters to use; empty for none.</param>
    /// <param name="adapterWeights">A weight per adapter; null for 1 each.</param>
    /// <exception cref="ArgumentException">An adapter is unknown or named twice, or the counts differ.</exception>
    public void SetAdapters(IReadOnlyList<string> adapterNames, IReadOnlyList<float>? adapterWeights = null)
    {
        ArgumentNullException.ThrowIfNull(adapterNames);
        ThrowIfDisposed();
        Components.UpdateLora(state =>
        {
            state.SetActive(adapterNames, adapterWeights);
            return true;
        });
    }

    /// <summary>The active adapters' names (diffusers' <c>get_active_adapters</c>).</summary>
    public IReadOnlyList<string> GetActiveAdapters() => Components.UpdateLora(state => state.ActiveAdapters);

    /// <summary>The loaded adapters' names, in loading order.</summary>
    public IReadOnlyList<string> GetListAdapters() => Components.UpdateLora(state => state.AdapterNames);

    /// <summary>
    /// Fuses the active adapters (or <paramref name="adapterNames"/>) into the weights at their weights times
    /// <paramref name="loraScale"/> (diffusers' <c>fuse_lora</c>): a per-call <see cref="DiffusionRequest.LoraScale"/> no
    /// longer changes them, until <see cref="UnfuseLora"/>.
    /// </summary>
    /// <param name="loraScale">The scale to fuse at.</param>
    /// <param name="adapterNames">The adapters to fuse; null for the active ones.</param>
    /// <exception cref="InvalidOperationException">No adapter is active, or one is fused already.</exception>
    public void FuseLora(float loraScale = 1f, IReadOnlyList<string>? adapterNames = null)
    {
        if (!float.IsFinite(loraScale))
        {
            throw new ArgumentOutOfRangeException(nameof(loraScale), loraScale, "The LoRA scale must be a finite number.");
        }

        ThrowIfDisposed();
        Components.UpdateLora(state =>
        {
            state.Fuse(loraScale, adapterNames);
            return true;
        });
    }

    /// <summary>Takes the fused adapters out of the weights again (diffusers' <c>unfuse_lora</c>); the base weights come back exactly.</summary>
    public void UnfuseLora()
    {
        ThrowIfDisposed();
        Components.UpdateLora(state =>
        {
            state.Unfuse();
            return true;
        });
    }

    /// <summary>
    /// Removes every adapter (diffusers' <c>unload_lora_weights</c>): the base weights come back exactly, except for
    /// adapters fused with <see cref="FuseLora"/>, which stay in the weights, as in diffusers (fuse then unload keeps a LoRA for good).
    /// </summary>
    public void UnloadLoraWeights()
    {
        ThrowIfDisposed();
        Components.UpdateLora(state =>
        {
            state.Unload();
            return true;
        });
    }
}
