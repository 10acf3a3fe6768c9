using System.Numerics.Tensors;
using Microsoft.ML.OnnxRuntime;
using StableDiffusion.ExecutionProviders;
using StableDiffusion.Onnx;

namespace StableDiffusion.Models;

/// <summary>
/// The VAE encoder (<c>vae_encoder/model.onnx</c>): an image [1, 3, H, W] in [-1, 1] to the latent distribution
/// (mean and standard deviation, [1, 4, H / 8, W / 8] each), from which the pipelines sample with their seeded generator.
/// </summary>
/// <remarks>
/// Two export conventions exist, and both give seed-reproducible latents here: Optimum's <c>latent_parameters</c> (mean and
/// log-variance) and diffusers' own <c>latent_sample</c>, whose graph samples internally with an unseeded random op: there the
/// graph's mean and standard deviation tensors are exposed as extra outputs when it loads (see <see cref="OutputKind"/>).
/// </remarks>
public sealed class VaeEncoderModel : OnnxModel
{
    private const string InputName = "sample";
    private const string ParametersName = "latent_parameters";
    private const string SampleName = "latent_sample";
    private readonly TensorElementType _inputType;
    private readonly string[] _outputNames;

    private VaeEncoderModel(InferenceSession session, string modelPath, VaeEncoderOutputKind kind, string[] outputNames, SessionSettings settings)
        : base(session, ModelComponents.VaeEncoder, modelPath, settings)
    {
        try
        {
            _inputType = RequireInput(InputName, 4, TensorElementType.Float, TensorElementType.Float16).ElementDataType;
            foreach (string output in outputNames)
            {
                RequireOutput(output, kind == VaeEncoderOutputKind.LatentDistribution ? null : 4, TensorElementType.Float, TensorElementType.Float16);
            }

            OutputKind = kind;
            _outputNames = outputNames;
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>What the graph gives, which decides what a seed reproduces.</summary>
    public VaeEncoderOutputKind OutputKind { get; }

    /// <summary>Loads <c>vae_encoder/model.onnx</c>.</summary>
    /// <param name="modelPath">The graph file.</param>
    /// <param name="settings">Session settings (CPU by default).</param>
    /// <exception cref="ModelLoadException">The file is missing, corrupt, or not a VAE encoder.</exception>
    public static VaeEncoderModel Load(string modelPath, SessionSettings? settings = null) => Load(modelPath, settings ?? new SessionSettings(), null);

    internal static VaeEncoderModel Load(string modelPath, SessionSettings settings, Action<string, SessionOptions>? configure)
    {
        // Read the graph once: if it samples internally, expose its distribution before the one session is created.
        byte[]? model = null;
        byte[]? edited = null;
        string[]? distribution = null;
        if (File.Exists(modelPath))
        {
            try
            {
                model = File.ReadAllBytes(modelPath);
                if (OnnxGraphSurgery.FindSampledLatentDistribution(model, SampleName) is (string mean, string std))
                {
                    edited = OnnxGraphSurgery.AddGraphOutputs(model, [mean, std]);
                    distribution = [mean, std];
                }
            }
            catch (InvalidDataException)
            {
                // Not a well-formed graph: creating the session reports it with the file's name.
            }
        }

        (byte[]? graph, int attentions) = WithFusedAttention(modelPath, settings, edited, model);
        InferenceSession session = CreateSession(modelPath, ModelComponents.VaeEncoder, settings, configure, graph);
        (VaeEncoderOutputKind Kind, string[] Names) outputs = distribution is not null
            ? (VaeEncoderOutputKind.LatentDistribution, distribution)
            : session.OutputMetadata.ContainsKey(ParametersName)
                ? (VaeEncoderOutputKind.LatentParameters, [ParametersName])
                : (VaeEncoderOutputKind.LatentSample, [session.OutputMetadata.ContainsKey(SampleName) ? SampleName : session.OutputNames[0]]);
        return new VaeEncoderModel(session, modelPath, outputs.Kind, outputs.Names, settings) { FusedAttentions = attentions };
    }

    /// <summary>A graph built with the distribution's mean and standard deviation as the outputs <paramref name="mean"/> and <paramref name="std"/>.</summary>
    internal static VaeEncoderModel Load(BuiltGraph graph, string mean, string std, SessionSettings settings, Action<string, SessionOptions>? configure) =>
        new(CreateSession(graph, ModelComponents.VaeEncoder, settings, configure), graph.Path, VaeEncoderOutputKind.LatentDistribution, [mean, std], settings);

    /// <summary>Encodes one image to its latent distribution (not yet multiplied by the VAE scaling factor).</summary>
    /// <param name="image">An image [1, 3, H, W] in [-1, 1].</param>
    /// <param name="runOptions">ONNX Runtime run options (used for cancellation); null for none.</param>
    /// <returns>The mean and standard deviation; the standard deviation is null for a graph that samples internally
    /// (<see cref="VaeEncoderOutputKind.LatentSample"/>), whose "mean" is then its own random sample.</returns>
    public LatentDistribution Encode(ReadOnlyTensorSpan<float> image, RunOptions? runOptions = null)
    {
        ThrowIfDisposed();
        if (image.Rank != 4 || image.Lengths[0] != 1 || image.Lengths[1] != 3)
        {
            throw new ArgumentException("Expected one RGB image [1, 3, height, width].", nameof(image));
        }

        using var input = new OrtBuffer(_inputType, [1, 3, image.Lengths[2], image.Lengths[3]]);
        input.Write(image.AsSpan());
        using var owned = runOptions is null ? new RunOptions() : null;
        RunOptions options = runOptions ?? owned!;
        return OnDevice(() =>
        {
            using IDisposableReadOnlyCollection<OrtValue> outputs = Run(options, [InputName], [input.Value], _outputNames);
            return Read(outputs);
        });
    }

    private LatentDistribution Read(IDisposableReadOnlyCollection<OrtValue> outputs)
    {
        switch (OutputKind)
        {
            case VaeEncoderOutputKind.LatentParameters:
            {
                // Optimum's mean ‖ log-variance: std = exp(0.5 * clamp(logvar, -30, 20)), as diffusers' DiagonalGaussianDistribution.
                long[] shape = outputs[0].GetTensorTypeAndShape().Shape;
                float[] parameters = ReadSingle(outputs[0]);
                int half = parameters.Length / 2;
                float[] mean = parameters[..half];
                float[] std = parameters[half..];
                TensorPrimitives.Clamp(std, -30f, 20f, std);
                TensorPrimitives.Multiply(std, 0.5f, std);
                TensorPrimitives.Exp(std, std);
                nint[] latentShape = [1, (nint)(shape[1] / 2), (nint)shape[2], (nint)shape[3]];
                return new LatentDistribution(Tensor.Create(mean, latentShape), Tensor.Create(std, latentShape));
            }

            case VaeEncoderOutputKind.LatentDistribution:
                return new LatentDistribution(ToTensor(outputs[0]), Broadcast(outputs[1], outputs[0]));
            default:
                return new LatentDistribution(ToTensor(outputs[0]), null);
        }
    }

    private static Tensor<float> ToTensor(OrtValue value) =>
        Tensor.Create(ReadSingle(value), value.GetTensorTypeAndShape().Shape.Select(d => (nint)d).ToArray());

    // The graph's std has the mean's shape; guard against a graph that broadcasts it.
    private static Tensor<float> Broadcast(OrtValue std, OrtValue mean)
    {
        Tensor<float> values = ToTensor(std);
        long[] meanShape = mean.GetTensorTypeAndShape().Shape;
        return values.Lengths.SequenceEqual(meanShape.Select(d => (nint)d).ToArray())
            ? values
            : throw new ModelLoadException($"The VAE encoder's standard deviation has shape [{string.Join(",", values.Lengths.ToArray())}], not the mean's [{string.Join(",", meanShape)}].");
    }
}

/// <summary>The latent distribution of an encoded image.</summary>
/// <param name="Mean">The mean [1, 4, h, w] (for <see cref="VaeEncoderOutputKind.LatentSample"/> graphs, the graph's own sample).</param>
/// <param name="Std">The standard deviation, or null when the graph sampled internally.</param>
public sealed record LatentDistribution(Tensor<float> Mean, Tensor<float>? Std);

/// <summary>The VAE encoder export conventions, and what a seed reproduces with each.</summary>
public enum VaeEncoderOutputKind
{
    /// <summary>Optimum's export: mean and log-variance (8 channels); the pipeline samples with its seeded generator, so a
    /// seed reproduces diffusers exactly.</summary>
    LatentParameters,

    /// <summary>diffusers' own export, whose mean and standard deviation tensors were found inside the graph and exposed:
    /// the pipeline samples with its seeded generator, so a seed reproduces diffusers' PyTorch pipelines exactly.</summary>
    LatentDistribution,

    /// <summary>A graph that samples internally and whose distribution could not be found: results are not reproducible
    /// from a seed (the pipeline logs a warning).</summary>
    LatentSample,
}
