namespace StableDiffusion.Onnx.Builders;

/// <summary>What a text encoder graph built by <see cref="ClipTextModel.Build"/> answers besides diffusers' export.</summary>
internal sealed record ClipTextOptions
{
    /// <summary>
    /// diffusers' <c>clip_skip</c> values (1 to <c>num_hidden_layers</c>) the graph also answers, each as an output
    /// <see cref="ClipTextModel.ClipSkipOutputName"/> [batch, sequence, hidden]: <c>final_layer_norm(hidden_states[-(n + 1)])</c>,
    /// the prompt embeddings diffusers' <c>encode_prompt</c> makes with <c>clip_skip=n</c>. Web UIs count from 1 for no skip,
    /// so their "Clip skip: 2" is 1 here. Empty (the default) for the export's two outputs only.
    /// </summary>
    /// <remarks>Each value adds one layer norm over hidden states the encoder computes anyway, so a graph built with every
    /// value (for a pipeline that lets each request choose) costs next to nothing more per run.</remarks>
    public IReadOnlyList<int> ClipSkips { get; init; } = [];
}
