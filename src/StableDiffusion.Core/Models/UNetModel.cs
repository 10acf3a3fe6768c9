using System.Numerics.Tensors;
using Microsoft.ML.OnnxRuntime;
using StableDiffusion.ExecutionProviders;

namespace StableDiffusion.Models;

/// <summary>
/// The denoising UNet (<c>unet/model.onnx</c>, weights possibly in an external file beside it): predicts the noise in a
/// latent sample at a timestep, conditioned on the prompt embeddings. The timestep's element type (float32, float16, int64)
/// and shape (scalar, [1] or [batch]) are read from the graph, as exports differ.
/// </summary>
public sealed class UNetModel : OnnxModel
{
    private const string SampleName = "sample";
    private const string TimestepName = "timestep";
    private const string HiddenStatesName = "encoder_hidden_states";
    private readonly string _outputName;
    private readonly NodeMetadata _timestep;

    private UNetModel(InferenceSession session, string modelPath)
        : base(session, ModelComponents.Unet, modelPath)
    {
        try
        {
            NodeMetadata sample = RequireInput(SampleName, 4, TensorElementType.Float, TensorElementType.Float16);
            _timestep = RequireInput(TimestepName, null, TensorElementType.Float, TensorElementType.Float16, TensorElementType.Int64, TensorElementType.Int32);
            if (_timestep.Dimensions.Length > 1)
            {
                throw new ModelLoadException($"The unet graph '{modelPath}' has a timestep input of rank {_timestep.Dimensions.Length}; expected a scalar or a vector.", modelPath);
            }

            NodeMetadata hidden = RequireInput(HiddenStatesName, 3, TensorElementType.Float, TensorElementType.Float16);
            _outputName = OutputNameOr("out_sample");
            RequireOutput(_outputName, 4, TensorElementType.Float, TensorElementType.Float16);
            SampleType = sample.ElementDataType;
            HiddenStatesType = hidden.ElementDataType;
            InChannels = FixedDimension(sample, 1);
            CrossAttentionDim = FixedDimension(hidden, 2);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>The number of input channels when the graph fixes it (4 for text-to-image UNets, 9 for inpainting ones).</summary>
    public int? InChannels { get; }

    /// <summary>The width of the encoder hidden states the graph expects, when fixed (768 for SD 1.x).</summary>
    public int? CrossAttentionDim { get; }

    /// <summary>The element type of the sample input (Float16 for fp16 exports).</summary>
    public TensorElementType SampleType { get; }

    /// <summary>The element type of the encoder hidden states input.</summary>
    public TensorElementType HiddenStatesType { get; }

    /// <summary>The element type of the timestep input.</summary>
    public TensorElementType TimestepType => _timestep.ElementDataType;

    /// <summary>Whether the graph takes integer timesteps (early exports): fractional timesteps are then truncated, as diffusers' ONNX pipelines do.</summary>
    public bool HasIntegerTimestep => TimestepType is TensorElementType.Int64 or TensorElementType.Int32;

    /// <summary>Loads <c>unet/model.onnx</c>.</summary>
    /// <param name="modelPath">The graph file (external weights are found beside it).</param>
    /// <param name="settings">Session settings (CPU by default).</param>
    /// <exception cref="ModelLoadException">The file is missing, corrupt, or not a UNet.</exception>
    public static UNetModel Load(string modelPath, SessionSettings? settings = null) =>
        new(CreateSession(modelPath, ModelComponents.Unet, settings, null), modelPath);

    internal static UNetModel Load(string modelPath, SessionSettings settings, Action<string, SessionOptions>? configure) =>
        new(CreateSession(modelPath, ModelComponents.Unet, settings, configure), modelPath);

    /// <summary>Predicts the noise in <paramref name="sample"/> at <paramref name="timestep"/>.</summary>
    /// <param name="sample">The (scaled) latent input, [batch, channels, height, width].</param>
    /// <param name="timestep">The timestep.</param>
    /// <param name="encoderHiddenStates">The prompt embeddings, [batch, sequence, hidden].</param>
    /// <param name="destination">Where the prediction goes, [batch, 4, height, width].</param>
    /// <param name="runOptions">ONNX Runtime run options (used for cancellation); null for none.</param>
    public void Predict(ReadOnlyTensorSpan<float> sample, float timestep, ReadOnlyTensorSpan<float> encoderHiddenStates, TensorSpan<float> destination, RunOptions? runOptions = null)
    {
        ThrowIfDisposed();
        if (sample.Rank != 4 || encoderHiddenStates.Rank != 3 || destination.Rank != 4)
        {
            throw new ArgumentException("Expected sample [batch, channels, height, width], encoderHiddenStates [batch, sequence, hidden] and destination [batch, 4, height, width].");
        }

        int batch = (int)sample.Lengths[0];
        using UNetInvocation invocation = CreateInvocation(batch, (int)sample.Lengths[1], (int)sample.Lengths[2], (int)sample.Lengths[3],
            encoderHiddenStates.AsSpan(), (int)encoderHiddenStates.Lengths[1], (int)encoderHiddenStates.Lengths[2]);
        sample.AsSpan().CopyTo(invocation.Sample);
        using var owned = runOptions is null ? new RunOptions() : null;
        invocation.Run(timestep, runOptions ?? owned!);
        invocation.NoisePrediction.CopyTo(destination.AsSpan());
    }

    /// <summary>
    /// Binds pinned input and output buffers of one shape once, so that each denoising step only writes the sample and
    /// runs the graph, with no allocation.
    /// </summary>
    internal UNetInvocation CreateInvocation(int batch, int channels, int height, int width, ReadOnlySpan<float> encoderHiddenStates, int sequenceLength, int hiddenSize)
    {
        ThrowIfDisposed();
        if (encoderHiddenStates.Length != batch * sequenceLength * hiddenSize)
        {
            throw new ArgumentException($"Encoder hidden states of {encoderHiddenStates.Length} values do not match [{batch},{sequenceLength},{hiddenSize}].", nameof(encoderHiddenStates));
        }

        long[] timestepShape = _timestep.Dimensions.Length == 0 ? [] : [FixedDimension(_timestep, 0) ?? batch];
        return new UNetInvocation(this, _outputName, new OrtBuffer(SampleType, [batch, channels, height, width]),
            new OrtBuffer(TimestepType, timestepShape),
            CreateHiddenStates(encoderHiddenStates, [batch, sequenceLength, hiddenSize]),
            new OrtBuffer(Session.OutputMetadata[_outputName].ElementDataType, [batch, 4, height, width]));
    }

    private OrtBuffer CreateHiddenStates(ReadOnlySpan<float> values, long[] shape)
    {
        var buffer = new OrtBuffer(HiddenStatesType, shape);
        buffer.Write(values);
        return buffer;
    }
}

/// <summary>A UNet call of fixed shape with pinned buffers, reused for every step of one generation. Not thread-safe.</summary>
internal sealed class UNetInvocation : IDisposable
{
    private static readonly string[] InputNames = ["sample", "timestep", "encoder_hidden_states"];
    private readonly UNetModel _model;
    private readonly string[] _outputNames;
    private readonly OrtBuffer _sample;
    private readonly OrtBuffer _timestep;
    private readonly OrtBuffer _hiddenStates;
    private readonly OrtBuffer _output;
    private readonly OrtValue[] _inputs;
    private readonly OrtValue[] _outputs;
    private readonly float[] _timestepValues;

    internal UNetInvocation(UNetModel model, string outputName, OrtBuffer sample, OrtBuffer timestep, OrtBuffer hiddenStates, OrtBuffer output)
    {
        _model = model;
        _outputNames = [outputName];
        _sample = sample;
        _timestep = timestep;
        _hiddenStates = hiddenStates;
        _output = output;
        _inputs = [sample.Value, timestep.Value, hiddenStates.Value];
        _outputs = [output.Value];
        _timestepValues = new float[timestep.Length];
    }

    /// <summary>The sample input to fill before <see cref="Run"/>, [batch, channels, height, width].</summary>
    public Span<float> Sample => _sample.Single;

    /// <summary>The prediction after <see cref="Run"/>, [batch, 4, height, width].</summary>
    public ReadOnlySpan<float> NoisePrediction => _output.Single;

    /// <summary>Replaces the prompt embeddings (a step callback may change them).</summary>
    public void SetEncoderHiddenStates(ReadOnlySpan<float> values) => _hiddenStates.Write(values);

    public void Run(float timestep, RunOptions runOptions)
    {
        _timestepValues.AsSpan().Fill(timestep);
        _timestep.Write(_timestepValues);
        _sample.Commit();
        _model.Session.Run(runOptions, InputNames, _inputs, _outputNames, _outputs);
        _output.Refresh();
    }

    public void Dispose()
    {
        _sample.Dispose();
        _timestep.Dispose();
        _hiddenStates.Dispose();
        _output.Dispose();
    }
}
