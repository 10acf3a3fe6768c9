using System.Numerics.Tensors;
using Microsoft.ML.OnnxRuntime;
using StableDiffusion.ExecutionProviders;

namespace StableDiffusion.Models;

/// <summary>
/// The VAE encoder (<c>vae_encoder/model.onnx</c>): an image [1, 3, H, W] in [-1, 1] to latents. Two conventions exist:
/// Optimum's <c>latent_parameters</c> (mean and log-variance, 8 channels; the caller samples) and diffusers' own
/// <c>latent_sample</c> (4 channels, sampled inside the graph).
/// </summary>
public sealed class VaeEncoderModel : OnnxModel
{
    private const string InputName = "sample";
    private readonly TensorElementType _inputType;
    private readonly string _outputName;

    private VaeEncoderModel(InferenceSession session, string modelPath)
        : base(session, ModelComponents.VaeEncoder, modelPath)
    {
        try
        {
            _inputType = RequireInput(InputName, 4, TensorElementType.Float, TensorElementType.Float16).ElementDataType;
            if (Session.OutputMetadata.ContainsKey("latent_parameters"))
            {
                _outputName = "latent_parameters";
                OutputKind = VaeEncoderOutputKind.LatentParameters;
            }
            else
            {
                _outputName = OutputNameOr("latent_sample");
                OutputKind = VaeEncoderOutputKind.LatentSample;
            }

            RequireOutput(_outputName, 4, TensorElementType.Float, TensorElementType.Float16);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>What the graph returns.</summary>
    public VaeEncoderOutputKind OutputKind { get; }

    /// <summary>Loads <c>vae_encoder/model.onnx</c>.</summary>
    /// <param name="modelPath">The graph file.</param>
    /// <param name="settings">Session settings (CPU by default).</param>
    /// <exception cref="ModelLoadException">The file is missing, corrupt, or not a VAE encoder.</exception>
    public static VaeEncoderModel Load(string modelPath, SessionSettings? settings = null) =>
        new(CreateSession(modelPath, ModelComponents.VaeEncoder, settings, null), modelPath);

    internal static VaeEncoderModel Load(string modelPath, SessionSettings settings, Action<string, SessionOptions>? configure) =>
        new(CreateSession(modelPath, ModelComponents.VaeEncoder, settings, configure), modelPath);

    /// <summary>Runs the encoder on one image.</summary>
    /// <param name="image">An image [1, 3, H, W] in [-1, 1].</param>
    /// <param name="runOptions">ONNX Runtime run options (used for cancellation); null for none.</param>
    /// <returns>The graph's output: [1, 8, h, w] latent parameters or [1, 4, h, w] latents, see <see cref="OutputKind"/>.</returns>
    public Tensor<float> Encode(ReadOnlyTensorSpan<float> image, RunOptions? runOptions = null)
    {
        ThrowIfDisposed();
        if (image.Rank != 4 || image.Lengths[0] != 1 || image.Lengths[1] != 3)
        {
            throw new ArgumentException("Expected one RGB image [1, 3, height, width].", nameof(image));
        }

        using var input = new OrtBuffer(_inputType, [1, 3, image.Lengths[2], image.Lengths[3]]);
        input.Write(image.AsSpan());
        using var owned = runOptions is null ? new RunOptions() : null;
        using IDisposableReadOnlyCollection<OrtValue> outputs = Session.Run(runOptions ?? owned!, [InputName], [input.Value], [_outputName]);
        long[] shape = outputs[0].GetTensorTypeAndShape().Shape;
        return Tensor.Create(ReadSingle(outputs[0]), shape.Select(d => (nint)d).ToArray());
    }
}

/// <summary>The two VAE encoder export conventions.</summary>
public enum VaeEncoderOutputKind
{
    /// <summary>diffusers' export: latents sampled inside the graph (4 channels).</summary>
    LatentSample,

    /// <summary>Optimum's export: the latent distribution's mean and log-variance (8 channels); the caller samples.</summary>
    LatentParameters,
}
