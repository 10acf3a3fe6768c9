using System.Numerics.Tensors;
using Microsoft.ML.OnnxRuntime;
using StableDiffusion.ExecutionProviders;

namespace StableDiffusion.Models;

/// <summary>
/// The VAE decoder (<c>vae_decoder/model.onnx</c>): latents [1, channels, h, w] (already divided by the scaling factor) to an
/// image [1, 3, 8h, 8w] in about [-1, 1].
/// </summary>
public sealed class VaeDecoderModel : OnnxModel
{
    private const string InputName = "latent_sample";
    private readonly TensorElementType _inputType;
    private readonly string _outputName;

    private VaeDecoderModel(InferenceSession session, string modelPath, SessionSettings? settings)
        : base(session, ModelComponents.VaeDecoder, modelPath, settings)
    {
        try
        {
            NodeMetadata input = RequireInput(InputName, 4, TensorElementType.Float, TensorElementType.Float16);
            _inputType = input.ElementDataType;
            LatentChannels = FixedDimension(input, 1);
            _outputName = OutputNameOr("sample");
            RequireOutput(_outputName, 4, TensorElementType.Float, TensorElementType.Float16);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>The latent channels it decodes when the graph fixes them (4 for SD 1.x).</summary>
    public int? LatentChannels { get; }

    /// <summary>Loads <c>vae_decoder/model.onnx</c>.</summary>
    /// <param name="modelPath">The graph file.</param>
    /// <param name="settings">Session settings (CPU by default).</param>
    /// <exception cref="ModelLoadException">The file is missing, corrupt, or not a VAE decoder.</exception>
    public static VaeDecoderModel Load(string modelPath, SessionSettings? settings = null) => Load(modelPath, settings ?? new SessionSettings(), null);

    /// <summary>
    /// Loads the VAE decoder (from a diffusers <c>vae</c> folder, diffusers' <c>AutoencoderKL.from_pretrained</c>, or a <c>vae_decoder</c> export) from a folder of its own: a diffusers component folder (<c>config.json</c> and its safetensors), whose
    /// graph is built for the execution provider, or an ONNX export's (<c>model.onnx</c>). Give it to a pipeline in place of
    /// the model's own with <see cref="Pipelines.StableDiffusionPipelineOptions.Components"/>.
    /// </summary>
    /// <param name="folder">The component folder.</param>
    /// <param name="options">The session settings, <see cref="Pipelines.StableDiffusionPipelineOptions.ComputePrecision"/> and
    /// <see cref="Pipelines.StableDiffusionPipelineOptions.Variant"/> to load with; defaults (the CPU, float32) when null.</param>
    /// <exception cref="ModelLoadException">The folder is missing, in neither layout, or its configuration or weights cannot be used (the message names the file).</exception>
    public static VaeDecoderModel FromPretrained(string folder, Pipelines.StableDiffusionPipelineOptions? options = null) =>
        (VaeDecoderModel)Loading.ComponentRegistry.LoadFolder(ModelComponents.VaeDecoder, folder, options);

    internal static VaeDecoderModel Load(string modelPath, SessionSettings settings, Action<string, SessionOptions>? configure)
    {
        (byte[]? graph, int attentions) = WithFusedAttention(modelPath, settings);
        return new(CreateSession(modelPath, ModelComponents.VaeDecoder, settings, configure, graph), modelPath, settings) { FusedAttentions = attentions };
    }

    internal static VaeDecoderModel Load(BuiltGraph graph, SessionSettings settings, Action<string, SessionOptions>? configure) =>
        new(CreateSession(graph, ModelComponents.VaeDecoder, settings, configure), graph.Path, settings);

    /// <summary>Decodes latents in one call (as diffusers' PyTorch pipeline does; a convolutional decoder treats each image alone).</summary>
    /// <param name="latents">Scaled latents, [batch, channels, h, w].</param>
    /// <param name="runOptions">ONNX Runtime run options (used for cancellation); null for none.</param>
    /// <returns>Images [batch, 3, H, W] in about [-1, 1].</returns>
    public Tensor<float> Decode(ReadOnlyTensorSpan<float> latents, RunOptions? runOptions = null)
    {
        ThrowIfDisposed();
        if (latents.Rank != 4)
        {
            throw new ArgumentException("Expected latents [batch, channels, height, width].", nameof(latents));
        }

        using var input = new OrtBuffer(_inputType, [latents.Lengths[0], latents.Lengths[1], latents.Lengths[2], latents.Lengths[3]]);
        input.Write(latents.AsSpan());
        using var owned = runOptions is null ? new RunOptions() : null;
        RunOptions options = runOptions ?? owned!;
        (float[] images, long[] shape) = OnDevice(() =>
        {
            using IDisposableReadOnlyCollection<OrtValue> outputs = Run(options, [InputName], [input.Value], [_outputName]);
            return (ReadSingle(outputs[0]), outputs[0].GetTensorTypeAndShape().Shape);
        });
        return Tensor.Create(images, shape.Select(d => (nint)d).ToArray());
    }
}
