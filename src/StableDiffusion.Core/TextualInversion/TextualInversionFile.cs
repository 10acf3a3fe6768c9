using StableDiffusion.Models;
using StableDiffusion.Weights;

namespace StableDiffusion.TextualInversion;

/// <summary>
/// Reads textual inversion embeddings in the formats people have, as diffusers' <c>load_textual_inversion</c> reads them:
/// diffusers' <c>learned_embeds.safetensors</c> or <c>.bin</c> (one tensor, named by its token), the web UIs' <c>.pt</c>
/// files (<c>string_to_param["*"]</c> with the token in <c>name</c>) and their <c>.safetensors</c> files (<c>emb_params</c>,
/// named by the file, as the web UIs name it). PyTorch files are read by <see cref="TorchCheckpoint"/>, which never runs
/// their pickles.
/// </summary>
internal static class TextualInversionFile
{
    private const string WebUIPickleKey = "string_to_param.*";
    private const string WebUISafetensorsKey = "emb_params";

    /// <summary>Reads the embedding in <paramref name="path"/>.</summary>
    /// <param name="path">The file.</param>
    /// <param name="token">The token for prompts; null to take the file's own (its key, its <c>name</c>, or the file name).</param>
    /// <exception cref="TextualInversionException">The file holds no embedding, or several tensors none of which is one.</exception>
    /// <exception cref="ModelLoadException">The file is missing or damaged.</exception>
    public static TextualInversionEmbedding Read(string path, string? token)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (token is not null && string.IsNullOrWhiteSpace(token))
        {
            throw new ArgumentException("The token must not be empty or white space; pass null to use the file's own.", nameof(token));
        }

        path = System.IO.Path.GetFullPath(path);
        if (!File.Exists(path))
        {
            throw new ModelLoadException($"The textual inversion file '{path}' does not exist.", path);
        }

        bool pickle = IsZip(path) || System.IO.Path.GetExtension(path).ToLowerInvariant() is ".pt" or ".bin" or ".ckpt" or ".pth";
        return pickle ? ReadPickle(path, token) : ReadSafetensors(path, token);
    }

    private static TextualInversionEmbedding ReadSafetensors(string path, string? token)
    {
        using SafetensorsFile file = SafetensorsFile.Open(path);
        SafetensorsTensor tensor = file.Find(WebUISafetensorsKey) ?? file.Find(Single([.. file.Tensors.Select(t => t.Name)], path))!;
        RequireFloating(tensor.ElementType, tensor.Name, path);
        float[] values = new float[tensor.ElementCount];
        TorchCheckpointTensor.ToSingle(tensor.ElementType, file.GetBytes(tensor), values);
        string fileToken = tensor.Name == WebUISafetensorsKey ? System.IO.Path.GetFileNameWithoutExtension(path) : tensor.Name;
        return Create(token ?? fileToken, tensor.Shape, values, path);
    }

    private static TextualInversionEmbedding ReadPickle(string path, string? token)
    {
        using TorchCheckpoint checkpoint = TorchCheckpoint.Open(path);
        string name;
        string fileToken;
        if (checkpoint.Tensors.ContainsKey(WebUIPickleKey))
        {
            name = WebUIPickleKey;
            fileToken = checkpoint.Values.TryGetValue("name", out object? stored) && stored is string s ? s : System.IO.Path.GetFileNameWithoutExtension(path);
        }
        else
        {
            name = Single([.. checkpoint.Tensors.Keys], path);
            fileToken = name;
        }

        TorchCheckpointTensor tensor = checkpoint.Tensors[name];
        RequireFloating(tensor.ElementType, name, path);
        float[] values = new float[tensor.ElementCount];
        tensor.CopyTo(values);
        return Create(token ?? fileToken, [.. tensor.Shape], values, path);
    }

    // diffusers' format: the one tensor of the file, named by its token.
    private static string Single(string[] names, string path) => names.Length == 1
        ? names[0]
        : throw new TextualInversionException(
            $"'{path}' is not a textual inversion embedding: it has {(names.Length == 0 ? "no tensors" : $"{names.Length} tensors ({string.Join(", ", names.Take(8))}{(names.Length > 8 ? ", ..." : string.Empty)})")}, " +
            $"but an embedding file has one tensor named by its token (diffusers), '{WebUISafetensorsKey}' (web UI .safetensors) or string_to_param (web UI .pt). " +
            "A LoRA or a model checkpoint cannot be loaded as an embedding.", path);

    private static void RequireFloating(TensorElementType type, string name, string path)
    {
        if (type is not (TensorElementType.Float or TensorElementType.Float16 or TensorElementType.BFloat16 or TensorElementType.Double))
        {
            throw new TextualInversionException($"The tensor '{name}' in '{path}' holds {type} values, not the floating-point vectors of an embedding.", path);
        }
    }

    private static TextualInversionEmbedding Create(string token, IReadOnlyList<long> shape, float[] values, string path)
    {
        // [width] is one vector, [count, width] several.
        if (shape.Count is not (1 or 2) || values.Length == 0)
        {
            throw new TextualInversionException(
                $"The embedding in '{path}' has shape [{string.Join(", ", shape)}]; an embedding is one vector [width] or several [count, width].", path);
        }

        using FileStream file = File.OpenRead(path);
        string hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(file))[..12];
        return new TextualInversionEmbedding(token, (int)shape[^1], values, path, hash);
    }

    private static bool IsZip(string path)
    {
        Span<byte> magic = stackalloc byte[4];
        using FileStream stream = File.OpenRead(path);
        return stream.ReadAtLeast(magic, 4, throwOnEndOfStream: false) == 4 && magic.SequenceEqual("PK\u0003\u0004"u8);
    }
}
