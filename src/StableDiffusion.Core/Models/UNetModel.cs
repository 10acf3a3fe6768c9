using System.Numerics.Tensors;
using Microsoft.ML.OnnxRuntime;
using StableDiffusion.ExecutionProviders;
using StableDiffusion.Onnx;

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
    private readonly DeviceMemory? _deviceMemory;
    private readonly bool _cudaGraph;
    private readonly SemaphoreSlim _graphLock = new(1, 1);
    private UNetInvocation? _graphInvocation;
    private long[]? _graphShape;

    private UNetModel(InferenceSession session, string modelPath, SessionSettings settings)
        : base(session, ModelComponents.UNet, modelPath, settings)
    {
        ExecutionProvider provider = settings.ExecutionProvider;
        ExecutionProviderFamily family = ExecutionProviderFamily.Of(provider);
        _cudaGraph = family.CapturesGraphs(provider);
        _deviceMemory = (settings.IoBinding ?? true) ? family.CreateDeviceMemory(provider) : null;
        if (_cudaGraph && _deviceMemory is null)
        {
            session.Dispose();
            throw new ModelLoadException(
                $"Graph capture ({family.GraphCaptureOption}) needs the UNet bound in device memory: keep SessionSettings.IoBinding on and {family.DeviceMemoryRequirement}.", modelPath);
        }

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
            NodeMetadata output = RequireOutput(_outputName, 4, TensorElementType.Float, TensorElementType.Float16);
            SampleType = sample.ElementDataType;
            HiddenStatesType = hidden.ElementDataType;
            InChannels = FixedDimension(sample, 1);
            OutChannels = FixedDimension(output, 1);
            CrossAttentionDim = FixedDimension(hidden, 2);
        }
        catch
        {
            _deviceMemory?.Dispose();
            session.Dispose();
            throw;
        }
    }

    /// <summary>The number of input channels when the graph fixes it (4 for text-to-image UNets, 9 for inpainting ones).</summary>
    public int? InChannels { get; }

    /// <summary>The number of channels it predicts when the graph fixes it: the model's latent channels (4 for SD 1.x).</summary>
    public int? OutChannels { get; }

    /// <summary>The width of the encoder hidden states the graph expects, when fixed (768 for SD 1.x).</summary>
    public int? CrossAttentionDim { get; }

    /// <summary>The element type of the sample input (Float16 for fp16 exports).</summary>
    public TensorElementType SampleType { get; }

    /// <summary>The element type of the encoder hidden states input.</summary>
    public TensorElementType HiddenStatesType { get; }

    /// <summary>The element type of the timestep input.</summary>
    public TensorElementType TimestepType => _timestep.ElementDataType;

    /// <summary>
    /// Whether the graph takes integer timesteps: fractional timesteps are then truncated, as diffusers' ONNX pipelines do.
    /// Exports that only cast their integer timestep to float are loaded retyped to float, so this is true only for graphs
    /// that use the timestep as an integer.
    /// </summary>
    public bool HasIntegerTimestep => TimestepType is TensorElementType.Int64 or TensorElementType.Int32;

    /// <summary>Whether each step copies only the latents to and from device memory (IOBinding).</summary>
    public bool UsesDeviceBinding => _deviceMemory is not null;

    /// <summary>Whether the UNet replays a captured graph (CUDA graphs; generations on one pipeline then take turns in the loop).</summary>
    public bool UsesCudaGraph => _cudaGraph;

    /// <summary>Loads <c>unet/model.onnx</c>.</summary>
    /// <param name="modelPath">The graph file (external weights are found beside it).</param>
    /// <param name="settings">Session settings (CPU by default).</param>
    /// <exception cref="ModelLoadException">The file is missing, corrupt, or not a UNet.</exception>
    public static UNetModel Load(string modelPath, SessionSettings? settings = null) => Load(modelPath, settings ?? new SessionSettings(), null);

    internal static UNetModel Load(string modelPath, SessionSettings settings, Action<string, SessionOptions>? configure) =>
        new(CreateSession(modelPath, ModelComponents.UNet, settings, configure, FloatTimestepGraph(modelPath)), modelPath, settings);

    /// <summary>
    /// An export with an integer timestep input that it only casts to float, retyped to take float timesteps: the
    /// fractional timesteps of Euler-type schedules then reach the UNet whole, as in diffusers' PyTorch pipelines, instead of
    /// truncated. Null when the graph needs no edit (or cannot take one).
    /// </summary>
    private static byte[]? FloatTimestepGraph(string modelPath)
    {
        try
        {
            return File.Exists(modelPath) ? OnnxGraphSurgery.RetypeIntegerInputToFloat(modelPath, TimestepName) : null;
        }
        catch (InvalidDataException)
        {
            return null; // Not a well-formed graph: creating the session reports it with the file's name.
        }
    }

    /// <summary>Predicts the noise in <paramref name="sample"/> at <paramref name="timestep"/>.</summary>
    /// <param name="sample">The (scaled) latent input, [batch, channels, height, width].</param>
    /// <param name="timestep">The timestep.</param>
    /// <param name="encoderHiddenStates">The prompt embeddings, [batch, sequence, hidden].</param>
    /// <param name="destination">Where the prediction goes, [batch, latent channels, height, width].</param>
    /// <param name="runOptions">ONNX Runtime run options (used for cancellation); null for none.</param>
    public void Predict(ReadOnlyTensorSpan<float> sample, float timestep, ReadOnlyTensorSpan<float> encoderHiddenStates, TensorSpan<float> destination, RunOptions? runOptions = null)
    {
        ThrowIfDisposed();
        if (sample.Rank != 4 || encoderHiddenStates.Rank != 3 || destination.Rank != 4)
        {
            throw new ArgumentException("Expected sample [batch, channels, height, width], encoderHiddenStates [batch, sequence, hidden] and destination [batch, channels, height, width].");
        }

        var shape = new LatentShape((int)sample.Lengths[0], (int)sample.Lengths[1], (int)sample.Lengths[2], (int)sample.Lengths[3]);
        using UNetInvocation invocation = CreateInvocation(shape, (int)destination.Lengths[1],
            encoderHiddenStates.AsSpan(), (int)encoderHiddenStates.Lengths[1], (int)encoderHiddenStates.Lengths[2]);
        sample.AsSpan().CopyTo(invocation.Sample);
        using var owned = runOptions is null ? new RunOptions() : null;
        invocation.Run(timestep, runOptions ?? owned!);
        invocation.NoisePrediction.CopyTo(destination.AsSpan());
    }

    /// <summary>
    /// Binds input and output buffers of one shape once, so that each denoising step only writes the sample and runs the
    /// graph, with no allocation. With a CUDA graph the one bound invocation is shared, and this waits for its turn.
    /// </summary>
    /// <param name="sample">The sample's shape.</param>
    /// <param name="predictionChannels">The channels of the prediction when the graph leaves them open (the latent channels).</param>
    /// <param name="encoderHiddenStates">The prompt embeddings.</param>
    /// <param name="sequenceLength">Tokens per prompt.</param>
    /// <param name="hiddenSize">The embedding width.</param>
    /// <param name="cancellationToken">Stops waiting for a captured graph's turn.</param>
    internal UNetInvocation CreateInvocation(LatentShape sample, int predictionChannels, ReadOnlySpan<float> encoderHiddenStates, int sequenceLength, int hiddenSize,
        CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        if (encoderHiddenStates.Length != sample.Batch * sequenceLength * hiddenSize)
        {
            throw new ArgumentException($"Encoder hidden states of {encoderHiddenStates.Length} values do not match [{sample.Batch},{sequenceLength},{hiddenSize}].", nameof(encoderHiddenStates));
        }

        long[] sampleShape = sample.ToDimensions();
        long[] hiddenShape = [sample.Batch, sequenceLength, hiddenSize];
        long[] outputShape = sample.WithChannels(OutChannels ?? predictionChannels).ToDimensions();
        if (!_cudaGraph)
        {
            return Bind(sampleShape, hiddenShape, outputShape, encoderHiddenStates);
        }

        // A captured graph replays fixed device addresses: one invocation serves every generation, one at a time.
        _graphLock.Wait(cancellationToken);
        try
        {
            _graphInvocation ??= Bind(sampleShape, hiddenShape, outputShape, encoderHiddenStates);
            _graphShape ??= sampleShape;
            if (!_graphShape.SequenceEqual(sampleShape))
            {
                throw new ArgumentException(
                    $"The UNet's CUDA graph was captured for samples [{string.Join(",", _graphShape)}]; a replay cannot take [{string.Join(",", sampleShape)}]. Use one shape per pipeline (StaticShapeOptions).");
            }

            var lease = new GraphLease(_graphInvocation, _graphLock);
            lease.SetEncoderHiddenStates(encoderHiddenStates);
            return lease;
        }
        catch
        {
            _graphLock.Release();
            throw;
        }
    }

    private UNetInvocation Bind(long[] sampleShape, long[] hiddenShape, long[] outputShape, ReadOnlySpan<float> encoderHiddenStates)
    {
        long[] timestepShape = _timestep.Dimensions.Length == 0 ? [] : [FixedDimension(_timestep, 0) ?? sampleShape[0]];
        var sample = new OrtBuffer(SampleType, sampleShape);
        var timestep = new OrtBuffer(TimestepType, timestepShape);
        OrtBuffer hidden = CreateHiddenStates(encoderHiddenStates, hiddenShape);
        var output = new OrtBuffer(Session.OutputMetadata[_outputName].ElementDataType, outputShape);
        return _deviceMemory is { } memory
            ? new DeviceUNetInvocation(Session, memory, DeviceThread, _outputName, sample, timestep, hidden, output)
            : new HostUNetInvocation(Session, DeviceThread, _outputName, sample, timestep, hidden, output);
    }

    private protected override void DisposeCore()
    {
        _graphInvocation?.Dispose();
        _graphLock.Dispose();
        _deviceMemory?.Dispose();
    }

    /// <summary>A turn on the shared CUDA-graph invocation; disposing it ends the turn, not the invocation.</summary>
    private sealed class GraphLease(UNetInvocation inner, SemaphoreSlim gate) : UNetInvocation(null)
    {
        private int _released;

        public override Span<float> Sample => inner.Sample;

        public override ReadOnlySpan<float> NoisePrediction => inner.NoisePrediction;

        public override void SetEncoderHiddenStates(ReadOnlySpan<float> values) => inner.SetEncoderHiddenStates(values);

        public override void Run(float timestep, RunOptions runOptions) => inner.Run(timestep, runOptions);

        public override void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                gate.Release();
            }
        }
    }

    private OrtBuffer CreateHiddenStates(ReadOnlySpan<float> values, long[] shape)
    {
        var buffer = new OrtBuffer(HiddenStatesType, shape);
        buffer.Write(values);
        return buffer;
    }
}

/// <summary>A UNet call of fixed shape whose buffers are bound once and reused for every step of a generation. Not thread-safe.</summary>
internal abstract class UNetInvocation : IDisposable
{
    private readonly DeviceThread? _thread;
    private readonly Action? _runOnThread;
    private float _pendingTimestep;
    private RunOptions? _pendingOptions;

    private protected UNetInvocation(DeviceThread? thread)
    {
        _thread = thread;
        _runOnThread = thread is null ? null : () => RunCore(_pendingTimestep, _pendingOptions!);
    }

    /// <summary>The sample input to fill before <see cref="Run"/>, [batch, channels, height, width].</summary>
    public abstract Span<float> Sample { get; }

    /// <summary>The prediction after <see cref="Run"/>, [batch, latent channels, height, width].</summary>
    public abstract ReadOnlySpan<float> NoisePrediction { get; }

    /// <summary>Replaces the prompt embeddings.</summary>
    public abstract void SetEncoderHiddenStates(ReadOnlySpan<float> values);

    /// <summary>Runs the UNet at <paramref name="timestep"/>, on the device thread when the session is on CUDA.</summary>
    public virtual void Run(float timestep, RunOptions runOptions)
    {
        if (_thread is null)
        {
            RunCore(timestep, runOptions);
            return;
        }

        // A cached delegate and fields, so a step allocates nothing.
        _pendingTimestep = timestep;
        _pendingOptions = runOptions;
        _thread.Invoke(_runOnThread!);
    }

    public abstract void Dispose();

    private protected virtual void RunCore(float timestep, RunOptions runOptions) => throw new NotSupportedException();
}

/// <summary>Pinned host buffers bound as OrtValues: ONNX Runtime copies them to the device (if any) inside each run.</summary>
internal sealed class HostUNetInvocation : UNetInvocation
{
    private static readonly string[] InputNames = ["sample", "timestep", "encoder_hidden_states"];
    private readonly InferenceSession _session;
    private readonly string[] _outputNames;
    private readonly OrtBuffer _sample;
    private readonly OrtBuffer _timestep;
    private readonly OrtBuffer _hiddenStates;
    private readonly OrtBuffer _output;
    private readonly OrtValue[] _inputs;
    private readonly OrtValue[] _outputs;
    private readonly float[] _timestepValues;

    internal HostUNetInvocation(InferenceSession session, DeviceThread? thread, string outputName, OrtBuffer sample, OrtBuffer timestep, OrtBuffer hiddenStates, OrtBuffer output)
        : base(thread)
    {
        _session = session;
        _outputNames = [outputName];
        _sample = sample;
        _timestep = timestep;
        _hiddenStates = hiddenStates;
        _output = output;
        _inputs = [sample.Value, timestep.Value, hiddenStates.Value];
        _outputs = [output.Value];
        _timestepValues = new float[timestep.Length];
    }

    public override Span<float> Sample => _sample.Single;

    public override ReadOnlySpan<float> NoisePrediction => _output.Single;

    public override void SetEncoderHiddenStates(ReadOnlySpan<float> values) => _hiddenStates.Write(values);

    private protected override void RunCore(float timestep, RunOptions runOptions)
    {
        _timestepValues.AsSpan().Fill(timestep);
        _timestep.Write(_timestepValues);
        _sample.Commit();
        _session.Run(runOptions, InputNames, _inputs, _outputNames, _outputs);
        _output.Refresh();
    }

    public override void Dispose()
    {
        _sample.Dispose();
        _timestep.Dispose();
        _hiddenStates.Dispose();
        _output.Dispose();
    }
}
