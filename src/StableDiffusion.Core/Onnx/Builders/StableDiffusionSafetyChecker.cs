namespace StableDiffusion.Onnx.Builders;

/// <summary>
/// diffusers' <c>StableDiffusionSafetyChecker</c> as far as its <c>config.json</c> (a <c>CLIPConfig</c>) shapes the graph,
/// built as diffusers exports it (<c>forward_onnx</c>) up to the verdict: CLIP's image tower and <c>visual_projection</c>,
/// cosine similarities to 17 concept and 3 special-care embeddings against their thresholds, and the verdict per image.
/// <see cref="Safety.SafetyChecker"/> runs the graph as it runs the export and blacks flagged images out on the host, as
/// it does with the export, so the decoded images are not given to the graph.
/// </summary>
/// <remarks>
/// <para>The weights are those of <c>safety_checker/model.safetensors</c>: <c>vision_model.vision_model.*</c> (or
/// <c>vision_model.*</c>), <c>visual_projection.weight</c>, <c>concept_embeds</c>, <c>special_care_embeds</c>,
/// <c>concept_embeds_weights</c> and <c>special_care_embeds_weights</c>.</para>
/// <para>As in the export, the scores are not rounded to 3 decimals as diffusers' PyTorch <c>forward</c> rounds them; the
/// two differ only for a score within 0.0005 above a threshold.</para>
/// </remarks>
/// <param name="Config">The configuration it was read from, for messages.</param>
/// <param name="Vision">The image tower (<c>vision_config</c>).</param>
/// <param name="ProjectionDim">The width of the image embedding and the concept embeddings (the top-level <c>projection_dim</c>).</param>
internal sealed record StableDiffusionSafetyChecker(ComponentConfig Config, ClipVisionModel Vision, int ProjectionDim)
{
    /// <summary>Concepts diffusers' module holds: flagging any of them flags the image.</summary>
    public const int ConceptCount = 17;

    /// <summary>Special-care concepts: flagging any of them lowers every concept's threshold by <see cref="SpecialCareAdjustment"/>.</summary>
    public const int SpecialCareCount = 3;

    /// <summary>How much closer to its threshold every concept counts once a special-care concept is flagged.</summary>
    private const float SpecialCareAdjustment = 0.01f;

    /// <summary>The smallest norm <c>torch.nn.functional.normalize</c> divides by.</summary>
    private const float NormalizeEpsilon = 1e-12f;

    /// <summary>Reads a <c>safety_checker/config.json</c>, with <c>CLIPConfig</c>'s defaults for missing fields.</summary>
    /// <exception cref="Models.ModelLoadException">A field has a value the builder cannot build (the message names it).</exception>
    public static StableDiffusionSafetyChecker FromConfig(ComponentConfig config) =>
        new(config, ClipVisionModel.FromConfig(config.Section("vision_config")), config.Int("projection_dim", 512));

    /// <summary>
    /// Builds the verdict with the export's names: input <c>clip_input</c> [batch, num_channels, image_size, image_size]
    /// (the CLIP pre-processed images, in the compute type of the graph's weights), output <c>has_nsfw_concepts</c> [batch]
    /// bool. The export also takes the decoded images and returns them with the flagged ones zeroed; the checker zeroes
    /// them on the host either way, so a built graph leaves them out (no copy of every image to the device to be returned
    /// unchanged).
    /// </summary>
    /// <exception cref="Models.ModelLoadException">The weights are missing a tensor, or do not have the configuration's shapes.</exception>
    public void Build(GraphBuilder graph)
    {
        TensorElementType computeType = graph.Parameters?.ComputeType
            ?? throw new InvalidOperationException("The safety checker's graph needs a parameter source for its weights.");
        Value clipInput = graph.Input(Safety.SafetyChecker.ClipInputName, computeType, "batch", Vision.NumChannels, Vision.ImageSize, Vision.ImageSize);
        (Value hasNsfwConcepts, _, _) = Forward(graph, clipInput);
        graph.Output(hasNsfwConcepts, Safety.SafetyChecker.HasNsfwConceptsName, "batch");
    }

    /// <summary>
    /// The verdict on <paramref name="clipInput"/>: per image whether it has an NSFW concept [batch] (bool), and the scores
    /// behind it, cosine similarity minus threshold, for the concepts [batch, 17] (with the special-care adjustment) and the
    /// special-care concepts [batch, 3]; a score above 0 flags its concept.
    /// </summary>
    /// <exception cref="Models.ModelLoadException">The weights are missing a tensor, or do not have the configuration's shapes.</exception>
    public (Value HasNsfwConcepts, Value ConceptScores, Value SpecialScores) Forward(GraphBuilder graph, Value clipInput)
    {
        int visionHidden = Vision.Encoder.HiddenSize;
        Config.RequireWeightShape(graph, "visual_projection.weight", [ProjectionDim, visionHidden], ("projection_dim", ProjectionDim), ("vision_config.hidden_size", visionHidden));
        Config.RequireWeightShape(graph, "concept_embeds", [ConceptCount, ProjectionDim], ("projection_dim", ProjectionDim));
        Config.RequireWeightShape(graph, "special_care_embeds", [SpecialCareCount, ProjectionDim], ("projection_dim", ProjectionDim));

        Value pooled;
        using (graph.Scope("vision_model"))
        {
            pooled = Vision.Forward(graph, clipInput).PooledOutput;
        }

        Value imageEmbeds = Normalize(graph.Linear("visual_projection", pooled, visionHidden, ProjectionDim, bias: false));
        Value specialScores = CosineSimilarity(imageEmbeds, graph.Parameter("special_care_embeds", [SpecialCareCount, ProjectionDim]))
            - graph.Parameter("special_care_embeds_weights", [SpecialCareCount]);
        // Any flagged special-care concept moves every concept closer to its threshold.
        Value adjustment = AnyAboveZero(specialScores, keepDimensions: true).Cast(specialScores.ElementType) * SpecialCareAdjustment;
        Value conceptScores = (CosineSimilarity(imageEmbeds, graph.Parameter("concept_embeds", [ConceptCount, ProjectionDim]))
            - graph.Parameter("concept_embeds_weights", [ConceptCount])) + adjustment;
        Value hasNsfwConcepts = AnyAboveZero(conceptScores, keepDimensions: false);
        return (hasNsfwConcepts, conceptScores, specialScores);
    }

    // Whether any score of a row [B, N] is above 0 (its maximum is): [B, 1] or [B], bool.
    private static Value AnyAboveZero(Value scores, bool keepDimensions)
    {
        Value maximum = scores.Graph.Node("ReduceMax", [scores], attributes: [("axes", new long[] { 1 }), ("keepdims", keepDimensions ? 1L : 0L)]);
        return maximum.Greater(scores.Like(0f));
    }

    // Cosine similarities of normalized rows [B, P] to the rows of embeds [N, P]: [B, N].
    private static Value CosineSimilarity(Value normalizedImageEmbeds, Value embeds) => normalizedImageEmbeds.Linear(Normalize(embeds));

    // torch.nn.functional.normalize over the last dimension: x / max(|x|, eps).
    private static Value Normalize(Value x)
    {
        Value norm = x.Graph.Node("ReduceL2", [x], attributes: [("axes", new long[] { -1 }), ("keepdims", 1L)]);
        return x / norm.Clip(NormalizeEpsilon, float.PositiveInfinity);
    }
}
