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
/// <para>Like diffusers' <c>from_single_file</c> by default, the UNet is the one under <c>model.diffusion_model.</c>: a file
/// that also holds the exponential moving average of the weights (<c>model_ema.*</c>, what training checkpoints keep beside
/// the trained weights) has those ignored.</para>
/// <para>A PyTorch pickle (<c>.ckpt</c>) is read by <see cref="TorchCheckpoint"/>, which runs nothing the file contains; its
/// components' tensors are copied once into a temporary safetensors file, deleted when this is disposed, since ONNX
/// Runtime reads external data from a plain file.</para>
/// </remarks>
internal sealed class SingleFileCheckpoint : IDisposable
{
    /// <summary>The base model of text-to-image checkpoints when the caller names none: the SD 1.5 repository (diffusers' choice).</summary>
    public const string DefaultBaseModel = "stable-diffusion-v1-5/stable-diffusion-v1-5";

    /// <summary>The base model of inpainting checkpoints when the caller names none (diffusers' choice).</summary>
    public const string DefaultInpaintingBaseModel = "stable-diffusion-v1-5/stable-diffusion-inpainting";

    private static readonly string[] ComponentPrefixes = [LdmKeyLayout.UNetPrefix, LdmKeyLayout.VaePrefix, LdmKeyLayout.TextEncoderPrefix];

    private readonly SafetensorsFile _file;
    private readonly string? _temporaryCopy;

    private SingleFileCheckpoint(string path, SafetensorsFile file, CheckpointKind kind, string? temporaryCopy = null) =>
        (Path, _file, Kind, _temporaryCopy) = (path, file, kind, temporaryCopy);

    /// <summary>The file.</summary>
    public string Path { get; }

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

        if (IsTorchCheckpoint(path))
        {
            return OpenTorchCheckpoint(path);
        }

        SafetensorsFile file = SafetensorsFile.Open(path);
        try
        {
            string[] keys = [.. file.Tensors.Select(t => t.Name)];
            return new SingleFileCheckpoint(path, file, CheckpointDetection.Detect(path, keys, key => file.Find(key)?.Shape));
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
    public void Dispose()
    {
        _file.Dispose();
        if (_temporaryCopy is not null)
        {
            File.Delete(_temporaryCopy);
        }
    }

    // torch.save writes a zip (PyTorch 1.6 and later) or, before, a bare pickle stream (protocol 2: 0x80 0x02), which
    // TorchCheckpoint refuses saying how to re-save it; a safetensors file starts with its header's length.
    private static bool IsTorchCheckpoint(string path)
    {
        Span<byte> start = stackalloc byte[4];
        using FileStream stream = File.OpenRead(path);
        int read = stream.ReadAtLeast(start, start.Length, throwOnEndOfStream: false);
        return (read == 4 && start is [(byte)'P', (byte)'K', 3, 4]) || (read >= 2 && start[0] == 0x80 && start[1] <= 5);
    }

    private static SingleFileCheckpoint OpenTorchCheckpoint(string path)
    {
        using TorchCheckpoint checkpoint = TorchCheckpoint.Open(path);
        IReadOnlyDictionary<string, TorchCheckpointTensor> state = checkpoint.StateDict;
        CheckpointKind kind = CheckpointDetection.Detect(path, [.. state.Keys], key => state.GetValueOrDefault(key)?.Shape);
        string copy = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"sdnet-checkpoint-{Guid.NewGuid():N}.safetensors");
        try
        {
            SafetensorsFile.Write(copy, [.. state
                .Where(pair => ComponentPrefixes.Any(prefix => pair.Key.StartsWith(prefix, StringComparison.Ordinal)))
                .Select(pair => new TensorToWrite(pair.Key, pair.Value.ElementType, pair.Value.Shape, pair.Value.ByteCount, pair.Value.CopyTo))]);
            return new SingleFileCheckpoint(path, SafetensorsFile.Open(copy), kind, copy);
        }
        catch
        {
            File.Delete(copy);
            throw;
        }
    }

    private SafetensorsParameters Parameters(LdmKeyLayout layout, TensorElementType computeType) => new([_file], computeType, layout.FileKey);
}
