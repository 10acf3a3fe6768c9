using System.Numerics.Tensors;
using Microsoft.ML.OnnxRuntime;
using StableDiffusion.ExecutionProviders;
using StableDiffusion.Onnx;

namespace StableDiffusion.Models;

/// <summary>
/// The denoising UNet (<c>unet/model.onnx</c>, weights possibly in an external file beside it): predicts the noise in a
/// latent sample at a timestep, conditioned on the prompt embeddings. Inputs are bound by name: the timestep's element
/// type (float32, float16, int64) and shape (scalar, [1] or [batch]) are read from the graph, as exports differ, and any
/// input beyond <c>sample</c>, <c>timestep</c> and <c>encoder_hidden_states</c> (<see cref="ExtraInputNames"/>) is
/// written by an <see cref="IUNetInputContributor"/>.
/// </summary>
public sealed class UNetModel : OnnxModel
{
    private readonly string _outputName;
    private readonly NodeMetadata _sample;
    private readonly NodeMetadata _hiddenStates;
    private readonly DeviceMemory? _deviceMemory;
    private readonly bool _capturesGraph;
    private readonly SemaphoreSlim _graphLock = new(1, 1);
    private UNetBinding? _graphBinding;

    private UNetModel(InferenceSession session, string modelPath, SessionSettings settings)
        : base(session, ModelComponents.UNet, modelPath, settings)
    {
        try
        {
            _sample = RequireInput(UNetSignature.SampleName, 4, TensorElementType.Float, TensorElementType.Float16);
            NodeMetadata timestep = RequireInput(UNetSignature.TimestepName, null, TensorElementType.Float, TensorElementType.Float16, TensorElementType.Int64, TensorElementType.Int32);
            if (timestep.Dimensions.Length > 1)
            {
                throw new ModelLoadException($"The unet graph '{modelPath}' has a timestep input of rank {timestep.Dimensions.Length}; expected a scalar or a vector.", modelPath);
            }

            _hiddenStates = RequireInput(UNetSignature.HiddenStatesName, 3, TensorElementType.Float, TensorElementType.Float16);
            Inputs = new UNetSignature(session, modelPath);
            foreach (string name in Inputs.ExtraNames)
            {
                // The types a binding converts to; anything else would fail deep inside a generation.
                RequireInput(name, null, TensorElementType.Float, TensorElementType.Float16, TensorElementType.Int64, TensorElementType.Int32);
            }

            _outputName = OutputNameOr("out_sample");
            NodeMetadata output = RequireOutput(_outputName, 4, TensorElementType.Float, TensorElementType.Float16);
            TimestepType = timestep.ElementDataType;
            InChannels = FixedDimension(_sample, 1);
            OutChannels = FixedDimension(output, 1);
            CrossAttentionDim = FixedDimension(_hiddenStates, 2);

            ExecutionProvider provider = settings.ExecutionProvider;
            ExecutionProviderFamily family = ExecutionProviderFamily.Of(provider);
            _capturesGraph = family.CapturesGraphs(provider);
            _deviceMemory = (settings.IoBinding ?? true) ? family.CreateDeviceMemory(provider) : null;
            if (_capturesGraph && _deviceMemory is null)
            {
                throw new ModelLoadException(
                    $"Graph capture ({family.GraphCaptureOption}) needs the UNet bound in device memory: keep SessionSettings.IoBinding on and {family.DeviceMemoryRequirement}.", modelPath);
            }
        }
        catch
        {
            Dispose();
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
    public TensorElementType SampleType => _sample.ElementDataType;

    /// <summary>The element type of the encoder hidden states input.</summary>
    public TensorElementType HiddenStatesType => _hiddenStates.ElementDataType;

    /// <summary>The element type of the timestep input.</summary>
    public TensorElementType TimestepType { get; }

    /// <summary>
    /// The graph's inputs beyond <c>sample</c>, <c>timestep</c> and <c>encoder_hidden_states</c> (such as LCM's
    /// <c>timestep_cond</c>), in the graph's order: each must be written by an <see cref="IUNetInputContributor"/>.
    /// </summary>
    public IReadOnlyList<string> ExtraInputNames => Inputs.ExtraNames;

    /// <summary>The graph's inputs by name: which the pipeline fills, which contributors write, and their shapes for a call.</summary>
    internal UNetSignature Inputs { get; }

    /// <summary>
    /// Whether the graph takes integer timesteps: fractional timesteps are then truncated, as diffusers' ONNX pipelines do.
    /// Exports that only cast their integer timestep to float are loaded retyped to float, so this is true only for graphs
    /// that use the timestep as an integer.
    /// </summary>
    public bool HasIntegerTimestep => TimestepType is TensorElementType.Int64 or TensorElementType.Int32;

    /// <summary>Whether the inputs and output are bound in device memory (IOBinding), so each step copies only what changed (the latents).</summary>
    public bool UsesDeviceBinding => _deviceMemory is not null;

    /// <summary>Whether the UNet replays a captured graph (CUDA graphs); generations on one pipeline then take turns in the loop.</summary>
    public bool UsesCudaGraph => _capturesGraph;

    /// <summary>Loads <c>unet/model.onnx</c>.</summary>
    /// <param name="modelPath">The graph file (external weights are found beside it).</param>
    /// <param name="settings">Session settings (CPU by default).</param>
    /// <exception cref="ModelLoadException">The file is missing, corrupt, or not a UNet.</exception>
    public static UNetModel Load(string modelPath, SessionSettings? settings = null) => Load(modelPath, settings ?? new SessionSettings(), null);

    /// <summary>
    /// Loads a UNet from a folder of its own (diffusers' <c>UNet2DConditionModel.from_pretrained</c>): a diffusers component
    /// folder (<c>config.json</c> and <c>diffusion_pytorch_model.safetensors</c>, sharded or not), whose graph is built for the
    /// execution provider, or an ONNX export's (<c>model.onnx</c>). Give it to a pipeline in place of the model's own with
    /// <see cref="Pipelines.StableDiffusionPipelineOptions.Components"/>.
    /// </summary>
    /// <param name="folder">The component folder, such as <c>stable-diffusion-inpainting/unet</c>.</param>
    /// <param name="options">The session settings (<c>unet</c>'s), <see cref="Pipelines.StableDiffusionPipelineOptions.ComputePrecision"/>
    /// and <see cref="Pipelines.StableDiffusionPipelineOptions.Variant"/> to load with; defaults (the CPU, float32) when null.</param>
    /// <exception cref="ModelLoadException">The folder is missing, in neither layout, or its configuration or weights cannot be used (the message names the file).</exception>
    public static UNetModel FromPretrained(string folder, Pipelines.StableDiffusionPipelineOptions? options = null) =>
        (UNetModel)Loading.ComponentRegistry.LoadFolder(ModelComponents.UNet, folder, options);

    internal static UNetModel Load(string modelPath, SessionSettings settings, Action<string, SessionOptions>? configure)
    {
        (byte[]? graph, int attentions) = ExportGraph(modelPath, settings);
        return new(CreateSession(modelPath, ModelComponents.UNet, settings, configure, graph), modelPath, settings) { Configure = configure, FusedAttentions = attentions };
    }

    internal static UNetModel Load(BuiltGraph graph, SessionSettings settings, Action<string, SessionOptions>? configure) =>
        new(CreateSession(graph, ModelComponents.UNet, settings, configure), graph.Path, settings) { Built = graph, Configure = configure };

    /// <summary>
    /// A session of this component made again from <paramref name="graph"/> (a copy of its <see cref="BaseGraph"/> with other
    /// weights), with the session settings this one has. This model is left as it is.
    /// </summary>
    /// <exception cref="ModelLoadException">ONNX Runtime refuses the graph.</exception>
    internal UNetModel Rebuilt(BuiltGraph graph) =>
        new(CreateSession(graph, ModelComponents.UNet, Settings, Configure), ModelPath, Settings) { Built = Built, Configure = Configure, FusedAttentions = FusedAttentions };

    /// <inheritdoc/>
    /// <remarks>An export's graph comes as <see cref="Load(string, SessionSettings, Action{string, SessionOptions})"/> loads it
    /// (<see cref="ExportGraph"/>).</remarks>
    internal override BuiltGraph BaseGraph() => Built ?? BuiltGraph.OfFile(ModelPath, ExportGraph(ModelPath, Settings).Graph);

    /// <summary>
    /// An export's graph with its load-time edits, with one full parse: the integer timestep retyped
    /// (<see cref="FloatTimestepGraph"/>, from the file's outline, one byte patched in place), then the attention rewritten
    /// to MultiHeadAttention where <paramref name="settings"/> ask for it (one parse of the patched bytes); null when
    /// neither applies.
    /// </summary>
    private static (byte[]? Graph, int Attentions) ExportGraph(string modelPath, SessionSettings settings) =>
        WithFusedAttention(modelPath, settings, FloatTimestepGraph(modelPath));

    /// <summary>
    /// An export with an integer timestep input that it only casts to float, retyped to take float timesteps: the
    /// fractional timesteps of Euler-type schedules then reach the UNet whole, as in diffusers' PyTorch pipelines, instead of
    /// truncated. Null when the graph needs no edit (or cannot take one).
    /// </summary>
    private static byte[]? FloatTimestepGraph(string modelPath)
    {
        try
        {
            return File.Exists(modelPath) ? OnnxGraphSurgery.RetypeIntegerInputToFloat(modelPath, UNetSignature.TimestepName) : null;
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
    /// <exception cref="ArgumentException">The shapes do not fit, or the graph takes <see cref="ExtraInputNames"/> (use the overload with contributors).</exception>
    public void Predict(ReadOnlyTensorSpan<float> sample, float timestep, ReadOnlyTensorSpan<float> encoderHiddenStates, TensorSpan<float> destination, RunOptions? runOptions = null) =>
        Predict(sample, timestep, encoderHiddenStates, destination, [], runOptions);

    /// <summary>Predicts the noise in <paramref name="sample"/> at <paramref name="timestep"/>, with inputs beyond the usual three.</summary>
    /// <param name="sample">The (scaled) latent input, [batch, channels, height, width].</param>
    /// <param name="timestep">The timestep.</param>
    /// <param name="encoderHiddenStates">The prompt embeddings, [batch, sequence, hidden].</param>
    /// <param name="destination">Where the prediction goes, [batch, latent channels, height, width].</param>
    /// <param name="inputs">The contributors of <see cref="ExtraInputNames"/>, called once as step 0 of 1.</param>
    /// <param name="runOptions">ONNX Runtime run options (used for cancellation); null for none.</param>
    /// <exception cref="ArgumentException">The shapes do not fit, or the contributors do not write exactly <see cref="ExtraInputNames"/>.</exception>
    public void Predict(ReadOnlyTensorSpan<float> sample, float timestep, ReadOnlyTensorSpan<float> encoderHiddenStates, TensorSpan<float> destination,
        IReadOnlyList<IUNetInputContributor> inputs, RunOptions? runOptions = null)
    {
        ThrowIfDisposed();
        if (sample.Rank != 4 || encoderHiddenStates.Rank != 3 || destination.Rank != 4)
        {
            throw new ArgumentException("Expected sample [batch, channels, height, width], encoderHiddenStates [batch, sequence, hidden] and destination [batch, channels, height, width].");
        }

        var shape = new LatentShape((int)sample.Lengths[0], (int)sample.Lengths[1], (int)sample.Lengths[2], (int)sample.Lengths[3]);
        using UNetInvocation invocation = CreateInvocation(shape, (int)destination.Lengths[1], encoderHiddenStates, inputs, nameof(inputs));
        sample.AsSpan().CopyTo(invocation.Sample);
        using var owned = runOptions is null ? new RunOptions() : null;
        invocation.Run(new UNetStep(0, 1, timestep, Guided: false), runOptions ?? owned!);
        invocation.NoisePrediction.CopyTo(destination.AsSpan());
    }

    /// <summary>
    /// Binds every input and the output for calls of one shape once, so that each denoising step only writes the sample
    /// (and what contributors change) and runs the graph, with no allocation. With a captured graph the one binding is
    /// shared, and this waits for its turn.
    /// </summary>
    /// <param name="sample">The sample's shape.</param>
    /// <param name="predictionChannels">The channels of the prediction when the graph leaves them open (the latent channels).</param>
    /// <param name="encoderHiddenStates">The prompt embeddings, [batch, sequence, hidden].</param>
    /// <param name="contributors">The contributors of <see cref="ExtraInputNames"/>.</param>
    /// <param name="contributorsName">The argument the contributors came from, for errors.</param>
    /// <param name="cancellationToken">Stops waiting for a captured graph's turn.</param>
    internal UNetInvocation CreateInvocation(LatentShape sample, int predictionChannels, ReadOnlyTensorSpan<float> encoderHiddenStates,
        IReadOnlyList<IUNetInputContributor> contributors, string contributorsName, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        if (encoderHiddenStates.Rank != 3 || encoderHiddenStates.Lengths[0] != sample.Batch)
        {
            throw new ArgumentException(
                $"Encoder hidden states of shape [{string.Join(",", encoderHiddenStates.Lengths.ToArray())}] do not match a sample batch of {sample.Batch}; expected [{sample.Batch}, sequence, hidden].",
                nameof(encoderHiddenStates));
        }

        IUNetInputContributor[] chosen = Inputs.RequireContributors(contributors, contributorsName);
        long[][] shapes = Inputs.Shapes(sample.ToDimensions(), [.. encoderHiddenStates.Lengths.ToArray().Select(d => (long)d)], chosen);
        long[] outputShape = sample.WithChannels(OutChannels ?? predictionChannels).ToDimensions();
        if (!_capturesGraph)
        {
            UNetBinding binding = Bind(shapes, outputShape);
            try
            {
                binding.HiddenStates.Write(encoderHiddenStates.AsSpan());
                return new UNetInvocation(binding, null, chosen, DeviceThread);
            }
            catch
            {
                binding.Dispose();
                throw;
            }
        }

        // A captured graph replays fixed device addresses: one binding serves every generation, one at a time.
        _graphLock.Wait(cancellationToken);
        try
        {
            _graphBinding ??= Bind(shapes, outputShape);
            RequireCapturedShapes(_graphBinding, shapes);
            _graphBinding.HiddenStates.Write(encoderHiddenStates.AsSpan());
            return new UNetInvocation(_graphBinding, _graphLock, chosen, DeviceThread);
        }
        catch
        {
            _graphLock.Release();
            throw;
        }
    }

    private UNetBinding Bind(long[][] shapes, long[] outputShape)
    {
        IReadOnlyList<string> names = Inputs.Names;
        var inputs = new List<UNetInput>(names.Count);
        OrtBuffer? output = null;
        try
        {
            for (int i = 0; i < names.Count; i++)
            {
                inputs.Add(new UNetInput(names[i], new OrtBuffer(Inputs.ElementType(names[i]), shapes[i])));
            }

            output = new OrtBuffer(Session.OutputMetadata[_outputName].ElementDataType, outputShape);
            var bound = new UNetInputs([.. inputs]);
            return _deviceMemory is { } memory
                ? new DeviceUNetBinding(Session, memory, bound, _outputName, output)
                : new HostUNetBinding(Session, bound, _outputName, output);
        }
        catch
        {
            foreach (UNetInput input in inputs)
            {
                input.Buffer.Dispose();
            }

            output?.Dispose();
            throw;
        }
    }

    private static void RequireCapturedShapes(UNetBinding binding, long[][] shapes)
    {
        UNetInput[] inputs = binding.Inputs.All;
        for (int i = 0; i < inputs.Length; i++)
        {
            if (!inputs[i].Shape.SequenceEqual(shapes[i]))
            {
                throw new ArgumentException(
                    $"The UNet's graph was captured with '{inputs[i].Name}' of shape [{string.Join(",", inputs[i].Shape.ToArray())}]; a replay cannot take [{string.Join(",", shapes[i])}]. Use one shape per pipeline (StaticShapeOptions).");
            }
        }
    }

    private protected override void DisposeCore()
    {
        _graphBinding?.Dispose();
        _graphLock.Dispose();
        _deviceMemory?.Dispose();
    }
}
