using Microsoft.ML.OnnxRuntime;
using StableDiffusion.ExecutionProviders;
using StableDiffusion.Imaging;
using StableDiffusion.Models;
using StableDiffusion.Onnx;
using StableDiffusion.Onnx.Builders;
using StableDiffusion.Pipelines.Internal;
using StableDiffusion.Weights;

namespace StableDiffusion.Previews;

/// <summary>
/// Full-size previews from the tiny autoencoder's decoder (diffusers' <c>AutoencoderTiny</c>, TAESD: madebyollin/taesd for
/// SD 1.x), built as an ONNX graph from its diffusers folder: a few milliseconds per preview where the VAE takes seconds,
/// close to the final image in colour and layout. Safe to use from several generations at once.
/// </summary>
/// <example>
/// <code>
/// using var taesd = TinyAutoencoderPreview.FromPretrained("models/taesd");   // config.json, diffusion_pytorch_model.safetensors
/// var request = new TextToImageRequest("a castle") { Preview = taesd };
/// </code>
/// </example>
public sealed class TinyAutoencoderPreview : LatentPreview, IDisposable
{
    private const string WeightsFile = "diffusion_pytorch_model.safetensors";
    private readonly InferenceSession _session;
    private readonly int _latentChannels;

    private TinyAutoencoderPreview(InferenceSession session, int latentChannels)
    {
        _session = session;
        _latentChannels = latentChannels;
    }

    /// <summary>Builds the decoder from a diffusers <c>AutoencoderTiny</c> folder (<c>config.json</c> and <c>diffusion_pytorch_model.safetensors</c>).</summary>
    /// <param name="folder">The folder.</param>
    /// <param name="session">Where and how the decoder runs; the CPU with defaults when null.</param>
    /// <exception cref="ModelLoadException">A file is missing, or the configuration or weights do not describe a tiny autoencoder (the message says which).</exception>
    public static TinyAutoencoderPreview FromPretrained(string folder, SessionSettings? session = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        string config = Path.Combine(folder, "config.json"), weightsPath = Path.Combine(folder, WeightsFile);
        foreach (string file in new[] { config, weightsPath })
        {
            if (!File.Exists(file))
            {
                throw new ModelLoadException($"'{file}' does not exist: a tiny autoencoder folder (such as madebyollin/taesd) has config.json and {WeightsFile}.", file);
            }
        }

        AutoencoderTiny model = AutoencoderTiny.FromConfig(ComponentConfig.Load(config));
        using SafetensorsFile weights = SafetensorsFile.Open(weightsPath);
        var parameters = new SafetensorsParameters([weights], TensorElementType.Float);
        var graph = new GraphBuilder("taesd_decoder", parameters);
        Value latents = graph.Input("latent_sample", TensorElementType.Float, "batch", model.LatentChannels, "height", "width");
        graph.Output(model.Decode(graph, latents), "sample", "batch", model.OutChannels, "image_height", "image_width");
        return new TinyAutoencoderPreview(
            OnnxModel.CreateSession(new BuiltGraph(graph.ToBytes(), parameters.Folder, weightsPath), "taesd_decoder", session, null), model.LatentChannels);
    }

    /// <inheritdoc />
    public override RgbImage Render(ReadOnlySpan<float> latents, int channels, int height, int width)
    {
        if (channels != _latentChannels || latents.Length != channels * height * width)
        {
            throw new ArgumentException($"The tiny autoencoder decodes {_latentChannels} latent channels; the latents are [{channels}, {height}, {width}] with {latents.Length} values.", nameof(latents));
        }

        float[] input = latents.ToArray();
        using OrtValue value = OrtValue.CreateTensorValueFromMemory(input, [1, channels, height, width]);
        using var runOptions = new RunOptions();
        using IDisposableReadOnlyCollection<OrtValue> outputs = _session.Run(runOptions, ["latent_sample"], [value], ["sample"]);
        GC.KeepAlive(this); // the session must not be finalized mid-run when nobody else holds the preview
        long[] shape = outputs[0].GetTensorTypeAndShape().Shape;
        var decoded = System.Numerics.Tensors.Tensor.Create(outputs[0].GetTensorDataAsSpan<float>().ToArray(), [.. shape.Select(static d => (nint)d)]);
        return ImageOutput.ToImages(ImageOutput.ToNhwcUnitRange(decoded))[0];
    }

    /// <summary>Releases the decoder's session.</summary>
    public void Dispose() => _session.Dispose();
}
