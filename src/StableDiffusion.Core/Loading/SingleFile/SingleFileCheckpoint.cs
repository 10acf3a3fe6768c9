using StableDiffusion.Models;
using StableDiffusion.Onnx;
using StableDiffusion.Onnx.Builders;
using StableDiffusion.Weights;

namespace StableDiffusion.Loading.SingleFile;

/// <summary>
/// A Stable Diffusion 1.x checkpoint in one file, in the original (CompVis) key layout: its UNet, VAE and text encoder as
/// diffusers components, each a configuration from a base model adjusted to the file and the file's weights under
/// diffusers' names, left in the file as external data.
/// </summary>
/// <remarks>
/// Like diffusers' <c>from_single_file</c> by default, the UNet is the one under <c>model.diffusion_model.</c>: a file
/// that also holds the exponential moving average of the weights (<c>model_ema.*</c>, what training checkpoints keep beside
/// the trained weights) has those ignored.
/// </remarks>
internal sealed class SingleFileCheckpoint : IDisposable
{
    /// <summary>The base model of text-to-image checkpoints when the caller names none: the SD 1.5 repository (diffusers' choice).</summary>
    public const string DefaultBaseModel = "stable-diffusion-v1-5/stable-diffusion-v1-5";

    /// <summary>The base model of inpainting checkpoints when the caller names none (diffusers' choice).</summary>
    public const string DefaultInpaintingBaseModel = "stable-diffusion-v1-5/stable-diffusion-inpainting";

    private readonly SafetensorsFile _file;

    private SingleFileCheckpoint(SafetensorsFile file, CheckpointKind kind) => (_file, Kind) = (file, kind);

    /// <summary>The file.</summary>
    public string Path => _file.Path;

    /// <summary><see cref="CheckpointKind.StableDiffusion1"/> or <see cref="CheckpointKind.StableDiffusion1Inpainting"/>.</summary>
    public CheckpointKind Kind { get; }

    /// <summary>The base model diffusers would take for this file when the caller names none.</summary>
    public string DefaultBase => Kind == CheckpointKind.StableDiffusion1Inpainting ? DefaultInpaintingBaseModel : DefaultBaseModel;

    /// <summary>Opens <paramref name="path"/> and checks that it is a complete Stable Diffusion 1.x checkpoint.</summary>
    /// <exception cref="ModelLoadException">The file is missing, damaged, a pickle, or not an SD 1.x checkpoint (the
    /// message says which, and <see cref="UnsupportedCheckpointException.Kind"/> what it looks like).</exception>
    public static SingleFileCheckpoint Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
        {
            throw new ModelLoadException(Directory.Exists(path)
                ? $"'{path}' is a folder; a single-file checkpoint is one .safetensors file (load a diffusers folder with FromPretrainedAsync)."
                : $"The checkpoint '{path}' does not exist.", path);
        }

        SafetensorsFile file = SafetensorsFile.Open(path);
        try
        {
            string[] keys = [.. file.Tensors.Select(t => t.Name)];
            return new SingleFileCheckpoint(file, CheckpointDetection.Detect(path, keys, key => file.Find(key)?.Shape));
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The UNet: <paramref name="baseConfig"/> (the base model's <c>unet/config.json</c>) with the file's input channels
    /// (9 for inpainting), and the file's weights, computed in <paramref name="computeType"/>.
    /// </summary>
    public (ComponentConfig Config, SafetensorsParameters Parameters) UNet(ComponentConfig baseConfig, TensorElementType computeType)
    {
        int inChannels = Kind == CheckpointKind.StableDiffusion1Inpainting ? 9 : 4;
        ComponentConfig config = baseConfig.With("in_channels", inChannels);
        return (config, Parameters(LdmKeyLayout.ForUNet(UNet2DConditionModel.FromConfig(config)), computeType));
    }

    /// <summary>The VAE: <paramref name="baseConfig"/> (the base model's <c>vae/config.json</c>) and the file's weights.</summary>
    public (ComponentConfig Config, SafetensorsParameters Parameters) Vae(ComponentConfig baseConfig, TensorElementType computeType) =>
        (baseConfig, Parameters(LdmKeyLayout.ForVae(AutoencoderKL.FromConfig(baseConfig)), computeType));

    /// <summary>The CLIP text encoder: <paramref name="baseConfig"/> (the base model's <c>text_encoder/config.json</c>) and the file's weights.</summary>
    public (ComponentConfig Config, SafetensorsParameters Parameters) TextEncoder(ComponentConfig baseConfig, TensorElementType computeType) =>
        (baseConfig, Parameters(LdmKeyLayout.ForTextEncoder(), computeType));

    /// <inheritdoc/>
    public void Dispose() => _file.Dispose();

    private SafetensorsParameters Parameters(LdmKeyLayout layout, TensorElementType computeType) => new([_file], computeType, layout.FileKey);
}
