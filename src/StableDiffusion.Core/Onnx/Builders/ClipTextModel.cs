using StableDiffusion.Models;

namespace StableDiffusion.Onnx.Builders;

/// <summary>
/// transformers' <c>CLIPTextModel</c>, Stable Diffusion's text encoder, as far as its <c>config.json</c> (a
/// <c>CLIPTextConfig</c>) shapes the graph, built with the inputs and outputs of diffusers' ONNX export: <c>input_ids</c>
/// [batch, sequence] int32 in, <c>last_hidden_state</c> and <c>pooler_output</c> out, and on request the prompt embeddings
/// of diffusers' <c>clip_skip</c>.
/// </summary>
/// <remarks>
/// <para>The weights are those of <c>text_encoder/model.safetensors</c>, under <c>text_model.</c> as the published SD 1.x
/// repositories have them, or without that prefix as transformers 5.6 and later write them; the builder takes whichever
/// the file has.</para>
/// <para>The sequence may be shorter than <see cref="MaxPositionEmbeddings"/> but not longer (transformers refuses it
/// too): callers pass the tokenizer's padded ids.</para>
/// </remarks>
/// <param name="Encoder">The transformer layers.</param>
/// <param name="VocabSize">Rows of the token embedding (<c>vocab_size</c>).</param>
/// <param name="MaxPositionEmbeddings">Rows of the position embedding (<c>max_position_embeddings</c>): the longest sequence.</param>
/// <param name="EosTokenId">
/// <c>eos_token_id</c>: where <c>pooler_output</c> is taken. Configurations written before transformers fixed it carry 2
/// (openai/clip-vit-large-patch14's, so SD 1.x's); transformers then pools at the largest id of each sequence (the
/// end-of-text token is the last of CLIP's vocabulary), and otherwise at the first occurrence of this id. Both are kept.
/// </param>
internal sealed record ClipTextModel(ClipEncoder Encoder, int VocabSize, int MaxPositionEmbeddings, int EosTokenId)
{
    /// <summary>The input: token ids [batch, sequence], int32 as diffusers exports it.</summary>
    public const string InputIdsName = "input_ids";

    /// <summary>The output diffusers uses as prompt embeddings: the last layer through the final layer norm [batch, sequence, hidden].</summary>
    public const string LastHiddenStateName = "last_hidden_state";

    /// <summary>The output at the end-of-text token of each sequence [batch, hidden].</summary>
    public const string PoolerOutputName = "pooler_output";

    /// <summary>The <c>eos_token_id</c> of configurations written before transformers fixed it (see <see cref="EosTokenId"/>).</summary>
    private const int LegacyEosTokenId = 2;

    /// <summary>The name of the output that answers diffusers' <c>clip_skip</c> <paramref name="clipSkip"/> (see <see cref="ClipTextOptions.ClipSkips"/>).</summary>
    public static string ClipSkipOutputName(int clipSkip) => $"clip_skip_{clipSkip}";

    /// <summary>Reads a <c>text_encoder/config.json</c>, with <c>CLIPTextConfig</c>'s defaults for missing fields.</summary>
    /// <exception cref="ModelLoadException">A field has a value the builder cannot build (the message names it).</exception>
    public static ClipTextModel FromConfig(ComponentConfig config) => new(
        ClipEncoder.FromConfig(config, defaultHiddenSize: 512, defaultIntermediateSize: 2048, defaultHeads: 8),
        config.Int("vocab_size", 49408), config.Int("max_position_embeddings", 77), config.Int("eos_token_id", 49407));

    /// <summary>
    /// Builds the whole graph: the input <see cref="InputIdsName"/>, the outputs <see cref="LastHiddenStateName"/> and
    /// <see cref="PoolerOutputName"/>, and one <see cref="ClipSkipOutputName"/> per value of <see cref="ClipTextOptions.ClipSkips"/>,
    /// all in the compute type of the graph's weights.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A clip skip is outside 1 to <c>num_hidden_layers</c>.</exception>
    /// <exception cref="ModelLoadException">The weights are missing a tensor, or do not have the configuration's shapes.</exception>
    public void Build(GraphBuilder graph, ClipTextOptions? options = null)
    {
        options ??= new ClipTextOptions();
        Value inputIds = graph.Input(InputIdsName, TensorElementType.Int32, "batch", "sequence");
        (Value lastHiddenState, Value poolerOutput, IReadOnlyDictionary<int, Value> clipSkips) = Forward(graph, inputIds, options.ClipSkips);
        graph.Output(lastHiddenState, LastHiddenStateName, "batch", "sequence", Encoder.HiddenSize);
        graph.Output(poolerOutput, PoolerOutputName, "batch", Encoder.HiddenSize);
        foreach ((int clipSkip, Value embeddings) in clipSkips)
        {
            graph.Output(embeddings, ClipSkipOutputName(clipSkip), "batch", "sequence", Encoder.HiddenSize);
        }
    }

    /// <summary>
    /// The forward of <c>CLIPTextModel</c> on <paramref name="inputIds"/> [batch, sequence] (int32 or int64): the last hidden
    /// state, the pooled output, and for each of <paramref name="clipSkips"/> the prompt embeddings of that clip skip.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A clip skip is outside 1 to <c>num_hidden_layers</c>.</exception>
    /// <exception cref="ModelLoadException">The weights are missing a tensor, or do not have the configuration's shapes.</exception>
    public (Value LastHiddenState, Value PoolerOutput, IReadOnlyDictionary<int, Value> ClipSkips) Forward(GraphBuilder graph, Value inputIds, IReadOnlyList<int> clipSkips)
    {
        foreach (int clipSkip in clipSkips)
        {
            // hidden_states has num_hidden_layers + 1 entries; clip_skip n takes the one n + 1 from the end.
            ArgumentOutOfRangeException.ThrowIfLessThan(clipSkip, 1, nameof(clipSkips));
            ArgumentOutOfRangeException.ThrowIfGreaterThan(clipSkip, Encoder.Layers, nameof(clipSkips));
        }

        if (graph.StoredShape("text_model.embeddings.token_embedding.weight") is null)
        {
            return Transformer(graph, inputIds, clipSkips);
        }

        using var scope = graph.Scope("text_model");
        return Transformer(graph, inputIds, clipSkips);
    }

    // CLIPTextTransformer: embeddings, the causally masked encoder, the final layer norm, pooling.
    private (Value, Value, IReadOnlyDictionary<int, Value>) Transformer(GraphBuilder graph, Value inputIds, IReadOnlyList<int> clipSkips)
    {
        int hidden = Encoder.HiddenSize;
        Value sequenceLength = inputIds.Shape().Slice([1], [2], [0]);
        Value embeddings;
        using (graph.Scope("embeddings"))
        {
            Encoder.Config.RequireWeightShape(graph, "token_embedding.weight", [VocabSize, hidden], ("vocab_size", VocabSize), ("hidden_size", hidden));
            Encoder.Config.RequireWeightShape(graph, "position_embedding.weight", [MaxPositionEmbeddings, hidden], ("max_position_embeddings", MaxPositionEmbeddings), ("hidden_size", hidden));
            Value tokens = graph.Parameter("token_embedding.weight", [VocabSize, hidden]).Gather(inputIds);
            // Positions 0 to sequence - 1: the first rows of the table, as transformers' position_ids buffer selects them.
            Value positions = graph.Node("Slice", [graph.Parameter("position_embedding.weight", [MaxPositionEmbeddings, hidden]), graph.Int64s(0), sequenceLength, graph.Int64s(0)]);
            embeddings = tokens + positions;
        }

        IReadOnlyList<Value> hiddenStates = Encoder.Build(graph, embeddings, CausalMask(graph, sequenceLength, embeddings.ElementType));
        Value lastHiddenState = FinalLayerNorm(graph, hiddenStates[^1]);
        var clipSkipStates = clipSkips.Distinct().ToDictionary(n => n, n => FinalLayerNorm(graph, hiddenStates[^(n + 1)]));

        Value eosIndex = EosTokenId == LegacyEosTokenId
            ? inputIds.Cast(TensorElementType.Int32).ArgMax(axis: -1)
            : inputIds.Cast(TensorElementType.Int64).Equal(graph.Int64(EosTokenId)).Cast(TensorElementType.Int32).ArgMax(axis: -1);
        Value poolerOutput = graph.Node("GatherND", [lastHiddenState, eosIndex.Unsqueeze(1)], attributes: ("batch_dims", 1L));
        return (lastHiddenState, poolerOutput, clipSkipStates);
    }

    private Value FinalLayerNorm(GraphBuilder graph, Value x) => graph.LayerNorm("final_layer_norm", x, Encoder.HiddenSize, Encoder.LayerNormEpsilon);

    // [L, L]: 0 on and below the diagonal, -inf above it, so that each token attends to itself and those before it.
    private static Value CausalMask(GraphBuilder graph, Value sequenceLength, TensorElementType computeType)
    {
        Value filled = graph.Scalar(float.NegativeInfinity).Expand(Value.Concat(0, sequenceLength, sequenceLength));
        return graph.Node("Trilu", [filled, graph.Int64(1)], attributes: ("upper", 1L)).Cast(computeType);
    }
}
