using StableDiffusion.Models;

namespace StableDiffusion.Onnx.Builders;

/// <summary>
/// transformers' <c>CLIPEncoder</c>, the stack of pre-norm transformer layers that CLIP's text and vision towers share
/// (<c>layers.{i}</c>: <c>layer_norm1</c>, <c>self_attn</c> with <c>q_proj</c>, <c>k_proj</c>, <c>v_proj</c>,
/// <c>out_proj</c>, <c>layer_norm2</c>, <c>mlp</c> with <c>fc1</c> and <c>fc2</c>), as far as the configuration shapes it.
/// </summary>
/// <param name="Config">The configuration it was read from (a <c>CLIPVisionConfig</c> may be a section of another), for messages.</param>
/// <param name="HiddenSize">The width of the hidden states (<c>hidden_size</c>).</param>
/// <param name="IntermediateSize">The width inside the MLP (<c>intermediate_size</c>).</param>
/// <param name="Heads">Attention heads (<c>num_attention_heads</c>), dividing <paramref name="HiddenSize"/>.</param>
/// <param name="Layers">Transformer layers (<c>num_hidden_layers</c>).</param>
/// <param name="HiddenAct">The MLP's activation (<c>hidden_act</c>), one of <see cref="Activations"/>.</param>
/// <param name="LayerNormEpsilon">The epsilon of every layer norm (<c>layer_norm_eps</c>).</param>
internal sealed record ClipEncoder(ComponentConfig Config, int HiddenSize, int IntermediateSize, int Heads, int Layers, string HiddenAct, float LayerNormEpsilon)
{
    /// <summary>The activations transformers' <c>ACT2FN</c> names that this builder knows: CLIP's QuickGELU, exact GELU, and
    /// the two names of GELU's tanh approximation.</summary>
    public static readonly string[] Activations = ["quick_gelu", "gelu", "gelu_new", "gelu_pytorch_tanh"];

    /// <summary>The width of one attention head.</summary>
    public int HeadDim => HiddenSize / Heads;

    /// <summary>Reads the encoder's fields of a text or vision configuration, with transformers' defaults for that tower.</summary>
    /// <exception cref="ModelLoadException">A field has a value the builder cannot build (the message names it).</exception>
    public static ClipEncoder FromConfig(ComponentConfig config, int defaultHiddenSize, int defaultIntermediateSize, int defaultHeads)
    {
        int hiddenSize = config.Int("hidden_size", defaultHiddenSize);
        int heads = config.Int("num_attention_heads", defaultHeads);
        if (hiddenSize % heads != 0)
        {
            throw new ModelLoadException(
                $"The configuration '{config.Path}' has {config.Qualified("hidden_size")} {hiddenSize}, which {config.Qualified("num_attention_heads")} {heads} " +
                "does not divide: every attention head needs the same width.", config.Path);
        }

        return new ClipEncoder(config, hiddenSize, config.Int("intermediate_size", defaultIntermediateSize), heads, config.Int("num_hidden_layers", 12),
            config.OneOf("hidden_act", "quick_gelu", Activations), config.Float("layer_norm_eps", 1e-5f));
    }

    /// <summary>
    /// The encoder in scope <c>encoder</c> over <paramref name="embeddings"/> [B, L, hidden]; returns transformers'
    /// <c>hidden_states</c>: the embeddings, then the output of each layer (the last one is the encoder's output).
    /// </summary>
    /// <param name="graph">The graph, in the scope of the encoder's parent (<c>text_model</c>, <c>vision_model</c>).</param>
    /// <param name="embeddings">The input of the first layer.</param>
    /// <param name="mask">Added to every layer's attention scores (the text tower's causal mask); null for none.</param>
    /// <exception cref="ModelLoadException">The weights have another shape, or more layers, than the configuration says.</exception>
    public IReadOnlyList<Value> Build(GraphBuilder graph, Value embeddings, Value? mask)
    {
        using var scope = graph.Scope("encoder");
        Config.RequireWeightShape(graph, "layers.0.mlp.fc1.weight", [IntermediateSize, HiddenSize], ("intermediate_size", IntermediateSize), ("hidden_size", HiddenSize));
        if (graph.StoredShape($"layers.{Layers}.layer_norm1.weight") is not null)
        {
            // Running fewer layers than the weights have would give plausible but wrong hidden states.
            throw new ModelLoadException(
                $"The configuration '{Config.Path}' has {Config.Qualified("num_hidden_layers")} {Layers}, but the weights have a layer " +
                $"'{graph.ScopePath}.layers.{Layers}' beyond them: the configuration and the weights belong to different models.", Config.Path);
        }

        var hiddenStates = new List<Value>(Layers + 1) { embeddings };
        for (int layer = 0; layer < Layers; layer++)
        {
            hiddenStates.Add(Layer(graph, $"layers.{layer}", hiddenStates[^1], mask));
        }

        return hiddenStates;
    }

    // CLIPEncoderLayer: pre-norm attention and MLP, each added to its input (residual sums the next layer norm may fuse).
    private Value Layer(GraphBuilder graph, string name, Value x, Value? mask)
    {
        using var scope = graph.Scope(name);
        Value h = SelfAttention(graph, graph.LayerNorm("layer_norm1", x, HiddenSize, LayerNormEpsilon), mask, residual: x);
        return Mlp(graph, graph.LayerNorm("layer_norm2", h, HiddenSize, LayerNormEpsilon), residual: h);
    }

    private Value SelfAttention(GraphBuilder graph, Value x, Value? mask, Value residual)
    {
        using var scope = graph.Scope("self_attn");
        Value attended = mask is null && graph.Flavor.UsesMultiHeadAttention
            ? MultiHeadAttention(graph, x)
            : Attention.ScaledDotProduct(
                graph.Linear("q_proj", x, HiddenSize, HiddenSize), graph.Linear("k_proj", x, HiddenSize, HiddenSize), graph.Linear("v_proj", x, HiddenSize, HiddenSize),
                Heads, HeadDim, mask);
        return graph.Linear("out_proj", attended, HiddenSize, HiddenSize, residual);
    }

    // Unmasked attention (the vision tower's) as ONNX Runtime's MultiHeadAttention, which adds the three projections' biases as
    // it splits the heads: on CUDA about ten kernels fewer per layer than the plain operators and their bias additions.
    private Value MultiHeadAttention(GraphBuilder graph, Value x)
    {
        string[] projections = ["q_proj", "k_proj", "v_proj"];
        var projected = new Value[projections.Length];
        var biases = new Value[projections.Length];
        for (int i = 0; i < projections.Length; i++)
        {
            projected[i] = graph.Linear(projections[i], x, HiddenSize, HiddenSize, bias: false);
            using var scope = graph.Scope(projections[i]);
            biases[i] = graph.Parameter("bias", shape: [HiddenSize]);
        }

        return Attention.MultiHead(Heads, projected[0], projected[1], projected[2], Value.Concat(0, biases));
    }

    private Value Mlp(GraphBuilder graph, Value x, Value residual)
    {
        using var scope = graph.Scope("mlp");
        Value h = graph.Linear("fc1", x, HiddenSize, IntermediateSize);
        h = HiddenAct switch
        {
            "quick_gelu" => h.QuickGelu(),
            "gelu" => h.Gelu(),
            _ => h.GeluTanh(),
        };
        return graph.Linear("fc2", h, IntermediateSize, HiddenSize, residual);
    }
}
