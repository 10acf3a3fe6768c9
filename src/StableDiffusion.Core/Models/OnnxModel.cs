using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using StableDiffusion.ExecutionProviders;
using StableDiffusion.Onnx;

namespace StableDiffusion.Models;

/// <summary>
/// One ONNX graph of a Stable Diffusion model (text encoder, UNet, VAE encoder or decoder) with its ONNX Runtime session,
/// created once and reused. Inputs are bound by name from the graph's metadata, and element types (float32, float16,
/// int32, int64) are converted at the boundary, so exports that differ in these conventions all work.
/// </summary>
/// <remarks><see cref="InferenceSession.Run(RunOptions, IReadOnlyCollection{string}, IReadOnlyCollection{OrtValue}, IReadOnlyCollection{string})"/>
/// is thread-safe, and so is every method of a model.</remarks>
public abstract class OnnxModel : IDisposable
{
    private static readonly Lock ConfigureLock = new();
    private bool _disposed;

    private protected OnnxModel(InferenceSession session, string component, string modelPath, SessionSettings? settings)
    {
        Session = session;
        Component = component;
        ModelPath = modelPath;
        Settings = settings ?? new SessionSettings();
        DeviceThread = DeviceThread.For(Settings.ExecutionProvider, component);
    }

    /// <summary>The component name as in <c>model_index.json</c>, such as <c>unet</c>.</summary>
    public string Component { get; }

    /// <summary>The path of the <c>.onnx</c> file.</summary>
    public string ModelPath { get; }

    /// <summary>The ONNX Runtime session, for advanced use (the model owns and disposes it).</summary>
    public InferenceSession Session { get; }

    /// <summary>The session settings it was loaded with; a session rebuilt from its graph (<see cref="BaseGraph"/>) takes them too.</summary>
    private protected SessionSettings Settings { get; }

    /// <summary>The caller's hook on the session options it was loaded with, for rebuilt sessions; set by the text encoder's and UNet's loaders.</summary>
    private protected Action<string, SessionOptions>? Configure { get; init; }

    /// <summary>
    /// The component's base graph when it is held in memory (built from diffusers weights or a single file); null when it is
    /// the file at <see cref="ModelPath"/>. A session rebuilt with other weights or outputs keeps it, whatever graph that
    /// session was created from, so that every rebuild starts from the base weights. Set by the text encoder's and UNet's loaders.
    /// </summary>
    private protected BuiltGraph? Built { get; init; }

    /// <summary>
    /// The component's base graph, with the folder of its external weights: what sessions rebuilt after loading (LoRA, clip
    /// skip, textual inversion) are made from. An export's file is read again at each call rather than held, as it may hold
    /// its weights.
    /// </summary>
    /// <exception cref="IOException">The graph file cannot be read.</exception>
    internal virtual BuiltGraph BaseGraph() => Built ?? BuiltGraph.OfFile(ModelPath);

    /// <summary>How many attentions were rewritten to MultiHeadAttention when the graph loaded (<see cref="SessionSettings.FuseAttention"/>).</summary>
    internal int FusedAttentions { get; init; }

    /// <summary>The thread that makes this model's calls when its provider keeps state per thread (see <see cref="ExecutionProviders.DeviceThread"/>); null otherwise.</summary>
    private protected DeviceThread? DeviceThread { get; }

    /// <summary>Runs a session call on the device thread when there is one, else on the calling thread.</summary>
    private protected T OnDevice<T>(Func<T> call) => DeviceThread is null ? call() : DeviceThread.Invoke(call);

    /// <summary>
    /// Runs the session. The model stays reachable until the native call returns: a model its caller never disposes
    /// could otherwise be finalized, and its session released, while ONNX Runtime still runs the graph.
    /// </summary>
    private protected IDisposableReadOnlyCollection<OrtValue> Run(RunOptions runOptions, IReadOnlyCollection<string> inputNames,
        IReadOnlyCollection<OrtValue> inputs, IReadOnlyCollection<string> outputNames)
    {
        IDisposableReadOnlyCollection<OrtValue> outputs = Session.Run(runOptions, inputNames, inputs, outputNames);
        GC.KeepAlive(this);
        return outputs;
    }

    /// <summary>Releases the native session.</summary>
    public void Dispose()
    {
        if (!_disposed)
        {
            _disposed = true;
            DisposeCore();
            DeviceThread?.Dispose();
            Session.Dispose();
            GC.SuppressFinalize(this);
        }
    }

    /// <summary>Releases what a model holds besides its session.</summary>
    private protected virtual void DisposeCore()
    {
    }

    /// <summary>Throws <see cref="ObjectDisposedException"/> after <see cref="Dispose"/>.</summary>
    private protected void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    /// <summary>
    /// The graph to load with its attention rewritten to MultiHeadAttention when <paramref name="settings"/> ask for it and
    /// some attention matches (<see cref="MultiHeadAttentionFusion"/>), else <paramref name="edited"/> as it is; and how many
    /// attentions were rewritten.
    /// </summary>
    /// <param name="modelPath">The graph file.</param>
    /// <param name="settings">The session settings.</param>
    /// <param name="edited">The graph already edited in memory, or null to read the file.</param>
    /// <param name="read">The file's bytes where the caller has read them already (unedited), so they are not read again.</param>
    private protected static (byte[]? Graph, int Attentions) WithFusedAttention(string modelPath, SessionSettings settings, byte[]? edited = null, byte[]? read = null)
    {
        if (!settings.FusesAttention || !File.Exists(modelPath))
        {
            return (edited, 0);
        }

        try
        {
            return MultiHeadAttentionFusion.Fuse(edited ?? read ?? File.ReadAllBytes(modelPath)) is var (fused, attentions) ? (fused, attentions) : (edited, 0);
        }
        catch (InvalidDataException)
        {
            return (edited, 0); // Not a well-formed graph: creating the session reports it with the file's name.
        }
    }

    /// <summary>Creates the session for <paramref name="modelPath"/>, turning every load failure into a <see cref="ModelLoadException"/>.</summary>
    internal static InferenceSession CreateSession(string modelPath, string component, SessionSettings? settings, Action<string, SessionOptions>? configure, byte[]? edited = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelPath);
        if (!File.Exists(modelPath))
        {
            throw new ModelLoadException($"The {component} model file '{modelPath}' does not exist.", modelPath);
        }

        // An edited graph loads from memory; its external weights (if any) are still beside the file. Loading by path lets
        // ONNX Runtime find external weights (weights.pb, model.onnx.data) beside the graph. Either way a refusal is the
        // file's, whose hint it gets.
        const string hint = "The file may be truncated or corrupt, or an external weights file it names may be missing beside it; download it again.";
        return edited is not null
            ? CreateSession(BuiltGraph.OfFile(modelPath, edited), component, settings, configure, hint)
            : CreateSession(modelPath, component, settings, configure, options => new InferenceSession(modelPath, options), hint);
    }

    /// <summary>
    /// Creates the session for a graph held in memory whose weights are external data in <see cref="BuiltGraph.ExternalDataFolder"/>,
    /// or where the files there link to (a Hugging Face cache's blobs: <see cref="OnnxExternalData.ResolveLinks"/>).
    /// </summary>
    internal static InferenceSession CreateSession(BuiltGraph graph, string component, SessionSettings? settings, Action<string, SessionOptions>? configure) =>
        CreateSession(graph, component, settings, configure, "A weights file it reads may be truncated, or changed since the graph was built; download it again.");

    private static InferenceSession CreateSession(BuiltGraph graph, string component, SessionSettings? settings, Action<string, SessionOptions>? configure, string hint) =>
        CreateSession(graph.Path, component, settings, configure, options =>
        {
            (byte[] model, string folder) = OnnxExternalData.ResolveLinks(graph.Model, graph.ExternalDataFolder);
            options.AddSessionConfigEntry("session.model_external_initializers_file_folder_path", folder);
            return new InferenceSession(model, options);
        }, hint);

    private static InferenceSession CreateSession(string modelPath, string component, SessionSettings? settings, Action<string, SessionOptions>? configure,
        Func<SessionOptions, InferenceSession> create, string hint)
    {
        using SessionOptions options = SessionOptionsFactory.Create(settings ?? new SessionSettings(), component);
        if (configure is not null)
        {
            // Sessions are created on two threads while a model loads; the caller's hook is never called on both at once.
            lock (ConfigureLock)
            {
                configure(component, options);
            }
        }

        try
        {
            return create(options);
        }
        catch (Exception ex) when (ex is OnnxRuntimeException or InvalidDataException)
        {
            throw new ModelLoadException($"ONNX Runtime could not load the {component} model '{modelPath}': {ex.Message.Trim()} {hint}", modelPath, ex);
        }
    }

    /// <summary>The metadata of a required input, or a <see cref="ModelLoadException"/> naming what the graph has instead.</summary>
    private protected NodeMetadata RequireInput(string name, int? rank, params TensorElementType[] types) =>
        Require(Session.InputMetadata, "input", name, rank, types);

    /// <summary>The metadata of a required output (see <see cref="RequireInput"/>).</summary>
    private protected NodeMetadata RequireOutput(string name, int? rank, params TensorElementType[] types) =>
        Require(Session.OutputMetadata, "output", name, rank, types);

    private NodeMetadata Require(IReadOnlyDictionary<string, NodeMetadata> metadata, string kind, string name, int? rank, TensorElementType[] types)
    {
        if (!metadata.TryGetValue(name, out NodeMetadata? node))
        {
            throw new ModelLoadException(
                $"The {Component} graph '{ModelPath}' has no {kind} named '{name}' (its {kind}s: {Describe(metadata)}). " +
                "It does not look like a diffusers ONNX export of this component.", ModelPath);
        }

        if (!node.IsTensor || (types.Length > 0 && !types.Contains(node.ElementDataType)) || (rank is int r && node.Dimensions.Length != r))
        {
            throw new ModelLoadException(
                $"The {Component} graph '{ModelPath}' has {kind} '{name}' of type {Describe(node)}; expected " +
                $"{string.Join(" or ", types)}{(rank is int expectedRank ? $" of rank {expectedRank}" : string.Empty)}.", ModelPath);
        }

        return node;
    }

    /// <summary>The first output's name when a graph does not use the usual one.</summary>
    private protected string OutputNameOr(string preferred) =>
        Session.OutputMetadata.ContainsKey(preferred) ? preferred : Session.OutputNames[0];

    /// <summary>Reads a float or float16 output as single precision.</summary>
    private protected static float[] ReadSingle(OrtValue value)
    {
        var info = value.GetTensorTypeAndShape();
        var result = new float[info.ElementCount];
        ReadSingle(value, result);
        return result;
    }

    /// <summary>Reads a float or float16 output into <paramref name="destination"/>.</summary>
    private protected static void ReadSingle(OrtValue value, Span<float> destination)
    {
        switch (value.GetTensorTypeAndShape().ElementDataType)
        {
            case TensorElementType.Float:
                value.GetTensorDataAsSpan<float>().CopyTo(destination);
                break;
            case TensorElementType.Float16:
                TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<Float16, Half>(value.GetTensorDataAsSpan<Float16>()), destination);
                break;
            default:
                throw new InvalidOperationException($"Expected a floating-point output, got {value.GetTensorTypeAndShape().ElementDataType}.");
        }
    }

    /// <summary>Fixed size of dimension <paramref name="index"/>, or null when symbolic.</summary>
    private protected static int? FixedDimension(NodeMetadata node, int index) =>
        index < node.Dimensions.Length && node.Dimensions[index] > 0 ? node.Dimensions[index] : null;

    private static string Describe(IReadOnlyDictionary<string, NodeMetadata> metadata) =>
        metadata.Count == 0 ? "none" : string.Join(", ", metadata.Select(m => $"'{m.Key}' {Describe(m.Value)}"));

    /// <summary>A node's type and shape as an error message shows them, such as <c>Float[batch,4,64,64]</c>.</summary>
    internal static string Describe(NodeMetadata node) => node.IsTensor
        ? $"{node.ElementDataType}[{string.Join(",", node.Dimensions.Select((d, i) => d > 0 ? d.ToString(System.Globalization.CultureInfo.InvariantCulture) : node.SymbolicDimensions.ElementAtOrDefault(i) is { Length: > 0 } s ? s : "?"))}]"
        : node.OnnxValueType.ToString();
}
