using System.Numerics.Tensors;
using Microsoft.ML.OnnxRuntime;
using StableDiffusion.ExecutionProviders;

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
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>The width of the hidden states (768 for SD 1.x), or null when the graph leaves it symbolic.</summary>
    public int? HiddenSize { get; }

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
        new(CreateSession(modelPath, ModelComponents.TextEncoder, settings, configure), modelPath, settings);

    internal static TextEncoderModel Load(BuiltGraph graph, SessionSettings settings, Action<string, SessionOptions>? configure) =>
        new(CreateSession(graph, ModelComponents.TextEncoder, settings, configure), graph.Path, settings);

    /// <summary>Encodes token ids, row-major [batch, sequenceLength].</summary>
    /// <param name="inputIds">The ids of every sequence, one after another.</param>
    /// <param name="batch">The number of sequences.</param>
    /// <param name="runOptions">ONNX Runtime run options (used for cancellation); null for none.</param>
    /// <returns>The last hidden state, [batch, sequenceLength, hidden].</returns>
    public Tensor<float> Encode(ReadOnlySpan<int> inputIds, int batch, RunOptions? runOptions = null)
    {
        ThrowIfDisposed();
        ArgumentOutOfRangeException.ThrowIfLessThan(batch, 1);
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
            using IDisposableReadOnlyCollection<OrtValue> outputs = Session.Run(options, [InputName], [ids.Value], [_outputName]);
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
