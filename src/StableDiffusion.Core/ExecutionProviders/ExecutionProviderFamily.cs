using System.Globalization;
using Microsoft.ML.OnnxRuntime;
using StableDiffusion.ExecutionProviders.Families;

namespace StableDiffusion.ExecutionProviders;

/// <summary>
/// Everything the SDK knows about one family of ONNX Runtime execution providers, in one place: its names, the native
/// package that carries it, how it is appended to a session, whether its sessions need one calling thread, and how a
/// model's buffers are bound in its device memory and replayed as a captured graph. One subclass per family in
/// <c>Families/</c>; <see cref="ExecutionProvider"/> (the public API) names which family a component runs on.
/// </summary>
/// <param name="ortName">ONNX Runtime's name of the provider.</param>
/// <param name="names">Our short names for it.</param>
/// <param name="package">The native package that carries it.</param>
internal abstract class ExecutionProviderFamily(string ortName, string[] names, string package)
{
    // The families the SDK configures. A name matching none is appended as ONNX Runtime's own (NamedProvider).
    private static readonly ExecutionProviderFamily[] Known =
    [
        new CpuProvider(), new CudaProvider(), new TensorRtProvider(), new DirectMLProvider(), new CoreMLProvider(),
        new OpenVinoProvider(), new RocmProvider(), new MIGraphXProvider(),
    ];

    /// <summary>ONNX Runtime's name of the provider, such as <c>CUDAExecutionProvider</c>.</summary>
    public string OrtName => ortName;

    /// <summary>Our short names for it, such as <c>CUDA</c> (matched in any case, as <see cref="OrtName"/> is); the first names its threads.</summary>
    public IReadOnlyList<string> Names => names;

    /// <summary>The native package (and what the machine needs) that carries the provider, named when it is missing.</summary>
    public string Package => package;

    /// <summary>Whether its sessions keep state per calling thread, so that every call of a session goes through one
    /// <see cref="DeviceThread"/>.</summary>
    public virtual bool NeedsDeviceThread => false;

    /// <summary>What binding in device memory needs on this machine, for the error when <see cref="CreateDeviceMemory"/> gives none.</summary>
    public virtual string DeviceMemoryRequirement => $"use a provider that binds device memory ({OrtName} does not)";

    /// <summary>The provider option that turns on graph capture (such as <c>enable_cuda_graph</c>), or null when it has none.</summary>
    public virtual string? GraphCaptureOption => null;

    /// <summary>The precision graphs built from diffusers weights compute in when the caller does not choose one.</summary>
    public virtual Pipelines.ComputePrecision DefaultComputePrecision => Pipelines.ComputePrecision.Float32;

    /// <summary>Whether attention runs as ONNX Runtime's <c>MultiHeadAttention</c> where <see cref="SessionSettings.FuseAttention"/>
    /// leaves it to the provider: where it was measured to need less memory and time with the same numbers.</summary>
    public virtual bool FusesAttentionByDefault => false;

    /// <summary>Whether ONNX Runtime's intra-op threads spin between operators where <see cref="SessionSettings.AllowSpinning"/>
    /// leaves it to the provider: where the CPU threads do the model's work.</summary>
    public virtual bool SpinsByDefault => false;

    /// <summary>Whether ONNX Runtime plans each run's memory from the first run's shapes where
    /// <see cref="SessionSettings.EnableMemoryPattern"/> leaves it to the provider.</summary>
    public virtual bool PlansMemoryByDefault(ExecutionProvider provider) => true;

    /// <summary>The operators a graph built from diffusers weights uses on this provider, for <paramref name="component"/>
    /// computing in <paramref name="precision"/>: plain ONNX operators unless the provider has faster ones of its own, with
    /// the UNet's attention through <c>MultiHeadAttention</c> when <paramref name="fuseAttention"/> (the session's
    /// <see cref="SessionSettings.FusesAttention"/>) and the UNet computes in float32, the one type of the operator's CPU
    /// kernel, which runs it where a provider has none.</summary>
    public virtual Onnx.Builders.GraphFlavor BuiltGraphFlavor(string component, Pipelines.ComputePrecision precision, bool fuseAttention) =>
        fuseAttention && component == Models.ModelComponents.UNet && precision == Pipelines.ComputePrecision.Float32
            ? Onnx.Builders.GraphFlavor.PlainWithMultiHeadAttention
            : Onnx.Builders.GraphFlavor.Plain;

    /// <summary>The family of <paramref name="provider"/>, by our name or ONNX Runtime's, in any case.</summary>
    public static ExecutionProviderFamily Of(ExecutionProvider provider)
    {
        ArgumentNullException.ThrowIfNull(provider);
        return Known.FirstOrDefault(family => family.IsNamed(provider.Name)) ?? new NamedProvider(provider.Name);
    }

    /// <summary>Appends the provider, with its options, to a session's options; by default through ONNX Runtime's by-name
    /// call with the options as given (CoreML, OpenVINO, and providers without a family of their own).</summary>
    public virtual void Append(SessionOptions options, ExecutionProvider provider) =>
        options.AppendExecutionProvider(OrtName.Replace("ExecutionProvider", string.Empty, StringComparison.Ordinal), new Dictionary<string, string>(provider.Options));

    /// <summary>
    /// The device memory that a model's inputs and outputs are bound in (IOBinding), so that a step copies only what
    /// changed; null to bind host buffers, which the provider copies itself within each run.
    /// </summary>
    public virtual DeviceMemory? CreateDeviceMemory(ExecutionProvider provider) => null;

    /// <summary>Whether <paramref name="provider"/>'s options turn on graph capture: the first run is recorded and later
    /// runs replay it at the same device addresses, so the bound buffers must stay put and be used by one call at a time.</summary>
    public bool CapturesGraphs(ExecutionProvider provider) =>
        GraphCaptureOption is { } option && provider.Options.TryGetValue(option, out string? value) && value is "1" or "true" or "True";

    /// <summary>The provider's options with its <c>device_id</c>, for providers configured through an options object.</summary>
    private protected static Dictionary<string, string> WithDevice(ExecutionProvider provider) =>
        new(provider.Options) { ["device_id"] = provider.DeviceId.ToString(CultureInfo.InvariantCulture) };

    private bool IsNamed(string name) =>
        string.Equals(name, OrtName, StringComparison.OrdinalIgnoreCase) || Names.Contains(name, StringComparer.OrdinalIgnoreCase);
}
