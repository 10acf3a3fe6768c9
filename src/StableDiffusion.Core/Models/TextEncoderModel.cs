using System.Numerics.Tensors;
using Microsoft.ML.OnnxRuntime;
using StableDiffusion.ExecutionProviders;
using StableDiffusion.Onnx;
using StableDiffusion.Onnx.Builders;

namespace StableDiffusion.Models;

/// <summary>
/// The CLIP text encoder (<c>text_encoder/model.onnx</c>): token ids [batch, 77] to hidden states [batch, 77, hidden],
/// the <c>last_hidden_state</c> output diffusers uses as prompt embeddings. Accepts int32 (diffusers exports) and int64
/// (Optimum exports) ids, and float16 graphs.
/// </summary>
public sealed class TextEncoderModel : OnnxModel
{
    private const string InputName = "input_ids";
    private readonly TensorElementType _idsType;
    private readonly string _outputName;

    private TextEncoderModel(InferenceSession session, string modelPath, SessionSettings? settings)
        : base(session, ModelComponents.TextEncoder, modelPath, settings)
    {
        try
        {
            _idsType = RequireInput(InputName, 2, TensorElementType.Int32, TensorElementType.Int64).ElementDataType;
            _outputName = OutputNameOr("last_hidden_state");
            NodeMetadata output = RequireOutput(_outputName, 3, TensorElementType.Float, TensorElementType.Float16);
            HiddenSize = FixedDimension(output, 2);
            while (Session.OutputMetadata.ContainsKey(ClipTextModel.ClipSkipOutputName(MaxClipSkip + 1)))
            {
                MaxClipSkip++;
            }
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>The width of the hidden states (768 for SD 1.x), or null when the graph leaves it symbolic.</summary>
    public int? HiddenSize { get; }

    /// <summary>
    /// The largest clip skip this graph answers (its <c>clip_skip_n</c> outputs; see <see cref="Encode"/>): 0 for a plain
    /// export, the number of layers once the outputs have been added.
    /// </summary>
    public int MaxClipSkip { get; }

    /// <summary>Loads <c>text_encoder/model.onnx</c>.</summary>
    /// <param name="modelPath">The graph file.</param>
    /// <param name="settings">Session settings (CPU by default).</param>
    /// <exception cref="ModelLoadException">The file is missing, corrupt, or not a text encoder.</exception>
    public static TextEncoderModel Load(string modelPath, SessionSettings? settings = null) =>
        new(CreateSession(modelPath, ModelComponents.TextEncoder, settings, null), modelPath, settings);

    /// <summary>
    /// Loads the CLIP text encoder (diffusers' <c>CLIPTextModel.from_pretrained</c>) from a folder of its own: a diffusers component folder (<c>config.json</c> and its safetensors), whose
    /// graph is built for the execution provider, or an ONNX export's (<c>model.onnx</c>). Give it to a pipeline in place of
    /// the model's own with <see cref="Pipelines.StableDiffusionPipelineOptions.Components"/>.
    /// </summary>
    /// <param name="folder">The component folder.</param>
    /// <param name="options">The session settings, <see cref="Pipelines.StableDiffusionPipelineOptions.ComputePrecision"/> and
    /// <see cref="Pipelines.StableDiffusionPipelineOptions.Variant"/> to load with; defaults (the CPU, float32) when null.</param>
    /// <exception cref="ModelLoadException">The folder is missing, in neither layout, or its configuration or weights cannot be used (the message names the file).</exception>
    public static TextEncoderModel FromPretrained(string folder, Pipelines.StableDiffusionPipelineOptions? options = null) =>
        (TextEncoderModel)Loading.ComponentRegistry.LoadFolder(ModelComponents.TextEncoder, folder, options);

    internal static TextEncoderModel Load(string modelPath, SessionSettings settings, Action<string, SessionOptions>? configure) =>
        new(CreateSession(modelPath, ModelComponents.TextEncoder, settings, configure), modelPath, settings) { Configure = configure };

    internal static TextEncoderModel Load(BuiltGraph graph, SessionSettings settings, Action<string, SessionOptions>? configure) =>
        new(CreateSession(graph, ModelComponents.TextEncoder, settings, configure), graph.Path, settings) { Built = graph, Configure = configure };

    /// <summary>
    /// Loads <c>text_encoder/model.onnx</c> edited (<see cref="TextEncoderGraphEdit"/>): with the clip skip outputs, and
    /// with rows added to its token embedding.
    /// </summary>
    /// <exception cref="ModelLoadException">The file cannot be loaded, or its graph cannot be edited (the message says why).</exception>
    internal static TextEncoderModel Load(string modelPath, SessionSettings settings, Action<string, SessionOptions>? configure, bool clipSkips, AddedTokenEmbeddings? addedTokens)
    {
        BuiltGraph graph;
        try
        {
            graph = BuiltGraph.OfFile(modelPath);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ModelLoadException($"The text encoder '{modelPath}' cannot be read: {ex.Message}", modelPath, ex);
        }

        return new(CreateSession(Edited(graph, clipSkips, addedTokens), ModelComponents.TextEncoder, settings, configure), modelPath, settings) { Configure = configure };
    }

    /// <summary>
    /// A session of this component made again from <paramref name="graph"/> (its <see cref="OnnxModel.BaseGraph"/>, or a
    /// copy of it with other weights), edited by <see cref="TextEncoderGraphEdit"/> with the clip skip outputs and rows added
    /// to its token embedding, with the session settings this one has. This model is left as it is.
    /// </summary>
    /// <exception cref="ModelLoadException">The graph cannot be edited or loaded (the message says why).</exception>
    internal TextEncoderModel Rebuilt(BuiltGraph graph, bool clipSkips, AddedTokenEmbeddings? addedTokens) =>
        new(CreateSession(Edited(graph, clipSkips, addedTokens), ModelComponents.TextEncoder, Settings, Configure), ModelPath, Settings) { Built = Built, Configure = Configure };

    private static BuiltGraph Edited(BuiltGraph graph, bool clipSkips, AddedTokenEmbeddings? addedTokens)
    {
        if (!clipSkips && addedTokens is null)
        {
            return graph;
        }

        try
        {
            return graph with { Model = TextEncoderGraphEdit.Apply(graph.Model, clipSkips, addedTokens).Model };
        }
        catch (InvalidDataException ex)
        {
            throw new ModelLoadException($"The text encoder '{graph.Path}' cannot be edited for clip skip or textual inversion: {ex.Message}", graph.Path, ex);
        }
    }

    /// <summary>Encodes token ids, row-major [batch, sequenceLength].</summary>
    /// <param name="inputIds">The ids of every sequence, one after another.</param>
    /// <param name="batch">The number of sequences.</param>
    /// <param name="runOptions">ONNX Runtime run options (used for cancellation); null for none.</param>
    /// <param name="clipSkip">
    /// diffusers' <c>clip_skip</c>: null for the last hidden state, n for the hidden state n layers before the last through
    /// the final layer norm (1 is a web UI's "Clip skip: 2"); at most <see cref="MaxClipSkip"/>.
    /// </param>
    /// <returns>The last hidden state (or that of <paramref name="clipSkip"/>), [batch, sequenceLength, hidden].</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="clipSkip"/> is below 1 or above <see cref="MaxClipSkip"/>.</exception>
    public Tensor<float> Encode(ReadOnlySpan<int> inputIds, int batch, RunOptions? runOptions = null, int? clipSkip = null)
    {
        ThrowIfDisposed();
        ArgumentOutOfRangeException.ThrowIfLessThan(batch, 1);
        if (clipSkip is int skip && (skip < 1 || skip > MaxClipSkip))
        {
            throw new ArgumentOutOfRangeException(nameof(clipSkip), skip, MaxClipSkip == 0
                ? $"The text encoder '{ModelPath}' has no clip skip outputs; the pipelines add them when a request sets ClipSkip."
                : $"Clip skip must be between 1 and {MaxClipSkip}, the text encoder's layers.");
        }

        string outputName = clipSkip is int n ? ClipTextModel.ClipSkipOutputName(n) : _outputName;
        if (inputIds.Length == 0 || inputIds.Length % batch != 0)
        {
            throw new ArgumentException($"{inputIds.Length} token ids do not split into {batch} sequences.", nameof(inputIds));
        }

        int sequenceLength = inputIds.Length / batch;
        using var ids = new OrtBuffer(_idsType, [batch, sequenceLength]);
        ids.Write(inputIds);
        using var owned = runOptions is null ? new RunOptions() : null;
        RunOptions options = runOptions ?? owned!;
        (float[] values, long[] shape) = OnDevice(() =>
        {
            using IDisposableReadOnlyCollection<OrtValue> outputs = Run(options, [InputName], [ids.Value], [outputName]);
            return (ReadSingle(outputs[0]), outputs[0].GetTensorTypeAndShape().Shape);
        });
        if (shape.Length != 3 || shape[0] != batch || shape[1] != sequenceLength)
        {
            throw new ModelLoadException(
                $"The text encoder '{ModelPath}' returned shape [{string.Join(",", shape)}] for ids of shape [{batch},{sequenceLength}].", ModelPath);
        }

        return Tensor.Create(values, [batch, sequenceLength, (nint)shape[2]]);
    }
}
