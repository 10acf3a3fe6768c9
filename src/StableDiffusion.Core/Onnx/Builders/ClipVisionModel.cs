namespace StableDiffusion.Onnx.Builders;

/// <summary>
/// transformers' <c>CLIPVisionModel</c>, the image tower of the safety checker, as far as a <c>CLIPVisionConfig</c> shapes
/// the graph: square patches embedded by a convolution, a class token, learned positions, <c>pre_layrnorm</c> (sic), the
/// encoder, and the class token through <c>post_layernorm</c> as the pooled output.
/// </summary>
/// <remarks>The weights sit under the model's own <c>vision_model.</c> (its <c>CLIPVisionTransformer</c>), or directly in
/// the model's scope where a file was written without it; the builder takes whichever the file has.</remarks>
/// <param name="Encoder">The transformer layers.</param>
/// <param name="ImageSize">The side of the square input (<c>image_size</c>); the position table has one row per patch plus the class token.</param>
/// <param name="PatchSize">The side of a patch (<c>patch_size</c>).</param>
/// <param name="NumChannels">Channels of the input (<c>num_channels</c>).</param>
internal sealed record ClipVisionModel(ClipEncoder Encoder, int ImageSize, int PatchSize, int NumChannels)
{
    /// <summary>Positions: one per patch, and the class token's.</summary>
    public int NumPositions => ((ImageSize / PatchSize) * (ImageSize / PatchSize)) + 1;

    /// <summary>Reads a <c>CLIPVisionConfig</c> (such as a <c>CLIPConfig</c>'s <c>vision_config</c> section), with its defaults for missing fields.</summary>
    /// <exception cref="Models.ModelLoadException">A field has a value the builder cannot build (the message names it).</exception>
    public static ClipVisionModel FromConfig(ComponentConfig config) => new(
        ClipEncoder.FromConfig(config, defaultHiddenSize: 768, defaultIntermediateSize: 3072, defaultHeads: 12),
        config.Int("image_size", 224), config.Int("patch_size", 32), config.Int("num_channels", 3));

    /// <summary>
    /// The forward on <paramref name="pixelValues"/> [batch, num_channels, image_size, image_size] in the graph's compute
    /// type: the last hidden state [batch, positions, hidden] and the pooled output [batch, hidden].
    /// </summary>
    /// <exception cref="Models.ModelLoadException">The weights are missing a tensor, or do not have the configuration's shapes.</exception>
    public (Value LastHiddenState, Value PooledOutput) Forward(GraphBuilder graph, Value pixelValues)
    {
        if (graph.StoredShape("vision_model.embeddings.class_embedding") is null)
        {
            return Transformer(graph, pixelValues);
        }

        using var scope = graph.Scope("vision_model");
        return Transformer(graph, pixelValues);
    }

    // CLIPVisionTransformer.
    private (Value, Value) Transformer(GraphBuilder graph, Value pixelValues)
    {
        int hidden = Encoder.HiddenSize;
        ComponentConfig config = Encoder.Config;
        Value embeddings;
        using (graph.Scope("embeddings"))
        {
            config.RequireWeightShape(graph, "patch_embedding.weight", [hidden, NumChannels, PatchSize, PatchSize],
                ("hidden_size", hidden), ("num_channels", NumChannels), ("patch_size", PatchSize));
            config.RequireWeightShape(graph, "position_embedding.weight", [NumPositions, hidden], ("image_size", ImageSize), ("patch_size", PatchSize), ("hidden_size", hidden));
            // The vision model's one convolution reads the NCHW pixels it is given, so it is a plain convolution in every
            // flavor (the CUDA flavor's NHWC convolution would need the pixels transposed first), as in ONNX Runtime's own
            // CLIP fusions.
            Value patches;
            using (graph.Scope("patch_embedding"))
            {
                patches = GraphFlavor.Plain.Conv2d(graph, pixelValues, PatchSize, padding: 0, bias: false);
            }

            patches = patches.Reshape(0, hidden, -1).Transpose(0, 2, 1);
            Value batch = pixelValues.Shape().Slice([0], [1], [0]);
            Value classToken = graph.Parameter("class_embedding", [1, 1, hidden]).Expand(Value.Concat(0, batch, graph.Int64s(1, hidden)));
            embeddings = Value.Concat(1, classToken, patches) + graph.Parameter("position_embedding.weight", [NumPositions, hidden]);
        }

        Value h = graph.LayerNorm("pre_layrnorm", embeddings, hidden, Encoder.LayerNormEpsilon);
        Value lastHiddenState = Encoder.Build(graph, h, mask: null)[^1];
        Value classState = lastHiddenState.Gather(graph.Int64(0), axis: 1);
        return (lastHiddenState, graph.LayerNorm("post_layernorm", classState, hidden, Encoder.LayerNormEpsilon));
    }
}
