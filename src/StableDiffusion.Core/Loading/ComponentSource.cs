using System.Text.Json;
using StableDiffusion.Loading.SingleFile;
using StableDiffusion.Models;
using StableDiffusion.Onnx;
using StableDiffusion.Onnx.Builders;
using StableDiffusion.Weights;

namespace StableDiffusion.Loading;

/// <summary>Where one graph component of a model comes from: an ONNX export, or a folder in the diffusers layout to build it from.</summary>
/// <param name="Path">The graph file or the component folder: what messages and <see cref="OnnxModel.ModelPath"/> name.</param>
internal abstract record ComponentSource(string Path)
{
    /// <summary>The graph file of an ONNX export in a component folder.</summary>
    public const string OnnxGraphName = "model.onnx";

    /// <summary>A component's configuration in the diffusers layout.</summary>
    public const string ConfigName = "config.json";

    // diffusers' models save as diffusion_pytorch_model, transformers' (text encoder, safety checker) as model.
    private static readonly string[] WeightStems = ["diffusion_pytorch_model", "model"];

    /// <summary>
    /// The source of graph component <paramref name="component"/> of the model folder <paramref name="modelPath"/>: its ONNX
    /// export (<c>{component}/model.onnx</c>), else its diffusers folder (the VAE halves both come from <c>vae/</c>); null when
    /// the folder has neither.
    /// </summary>
    public static ComponentSource? InModel(string modelPath, string component, string? variant) =>
        InFolder(System.IO.Path.Combine(modelPath, component), variant)
        ?? (component is ModelComponents.VaeDecoder or ModelComponents.VaeEncoder ? InFolder(System.IO.Path.Combine(modelPath, DiffusersFolderName(component)), variant) : null);

    /// <summary>The folder a graph component has in the diffusers layout: <c>vae</c> for both VAE halves, else its own name.</summary>
    public static string DiffusersFolderName(string component) => component is ModelComponents.VaeDecoder or ModelComponents.VaeEncoder ? "vae" : component;

    /// <summary>A component folder of either layout; null when it has neither a graph nor a configuration.</summary>
    /// <exception cref="ModelLoadException">The folder has a configuration but no safetensors weights (naming what it looked for).</exception>
    public static ComponentSource? InFolder(string folder, string? variant)
    {
        RequireValidVariant(variant);
        string graph = System.IO.Path.Combine(folder, OnnxGraphName);
        if (File.Exists(graph))
        {
            return new OnnxExport(graph);
        }

        string config = System.IO.Path.Combine(folder, ConfigName);
        return File.Exists(config) ? new DiffusersFolder(folder, config, FindWeights(folder, variant)) : null;
    }

    /// <summary>Refuses a variant that would not name a file beside the plain one (diffusers' variants are names such as <c>fp16</c>).</summary>
    /// <exception cref="ArgumentException">The variant is empty or has characters other than letters, digits, '-' and '_'.</exception>
    public static void RequireValidVariant(string? variant)
    {
        if (variant is not null && (variant.Length == 0 || !variant.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_')))
        {
            throw new ArgumentException(
                $"StableDiffusionPipelineOptions.Variant is '{variant}'; a variant is a name of letters, digits, '-' and '_', such as \"fp16\" (or null for the plain files).", nameof(variant));
        }
    }

    /// <summary>
    /// The safetensors files of a component folder, as diffusers picks them: with a variant, <c>{name}.{variant}.safetensors</c>
    /// (or its sharded index <c>{name}.safetensors.index.{variant}.json</c>) when present, else the plain file; the shards an
    /// index lists, each checked to exist.
    /// </summary>
    private static IReadOnlyList<string> FindWeights(string folder, string? variant)
    {
        var candidates = new List<string>();
        if (!string.IsNullOrEmpty(variant))
        {
            candidates.AddRange(WeightStems.SelectMany(stem => new[] { $"{stem}.{variant}.safetensors", $"{stem}.safetensors.index.{variant}.json" }));
        }

        candidates.AddRange(WeightStems.SelectMany(stem => new[] { $"{stem}.safetensors", $"{stem}.safetensors.index.json" }));
        foreach (string name in candidates)
        {
            string path = System.IO.Path.Combine(folder, name);
            if (File.Exists(path))
            {
                return name.EndsWith(".json", StringComparison.Ordinal) ? ReadShardIndex(path) : [path];
            }
        }

        bool pickles = Directory.EnumerateFiles(folder).Any(f => f.EndsWith(".bin", StringComparison.Ordinal) || f.EndsWith(".ckpt", StringComparison.Ordinal));
        throw new ModelLoadException(
            $"The component folder '{folder}' has a {ConfigName} but no weights in safetensors (looked for {string.Join(", ", candidates)})." +
            (pickles ? " It has PyTorch pickles (.bin), which are not loaded: download the model's .safetensors files instead." : " Download the component's weights again."),
            folder);
    }

    // A sharded checkpoint's index: {"weight_map": {"tensor": "file", ...}}; every file must be a plain name beside it.
    private static string[] ReadShardIndex(string path)
    {
        string folder = System.IO.Path.GetDirectoryName(path)!;
        string[] files;
        try
        {
            using JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(path));
            files = document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("weight_map", out JsonElement map) && map.ValueKind == JsonValueKind.Object
                && map.EnumerateObject().All(p => p.Value.ValueKind == JsonValueKind.String)
                ? [.. map.EnumerateObject().Select(p => p.Value.GetString()!).Distinct(StringComparer.Ordinal)]
                : throw new ModelLoadException($"The sharded weights index '{path}' has no \"weight_map\" object of tensor names to file names.", path);
        }
        catch (JsonException ex)
        {
            throw new ModelLoadException($"The sharded weights index '{path}' is not valid JSON: {ex.Message}", path, ex);
        }

        if (files.Length == 0)
        {
            throw new ModelLoadException($"The sharded weights index '{path}' lists no files.", path);
        }

        foreach (string file in files)
        {
            if (file.Length == 0 || file != System.IO.Path.GetFileName(file) || file is "." or "..")
            {
                throw new ModelLoadException($"The sharded weights index '{path}' names '{file}', which is not a file name beside it.", path);
            }

            if (!File.Exists(System.IO.Path.Combine(folder, file)))
            {
                throw new ModelLoadException($"The sharded weights index '{path}' lists '{file}', which is missing from '{folder}'. Download the component again.", path);
            }
        }

        return [.. files.Select(f => System.IO.Path.Combine(folder, f))];
    }

    /// <summary>An ONNX export's graph file.</summary>
    /// <param name="Graph">The <c>model.onnx</c> file (external weights beside it).</param>
    public sealed record OnnxExport(string Graph) : ComponentSource(Graph);

    /// <summary>A component folder in the diffusers layout: its configuration and its safetensors files.</summary>
    /// <param name="Folder">The component folder.</param>
    /// <param name="Config">Its <c>config.json</c>.</param>
    /// <param name="WeightFiles">Its safetensors files (one, or the shards of a sharded checkpoint).</param>
    public sealed record DiffusersFolder(string Folder, string Config, IReadOnlyList<string> WeightFiles) : ComponentSource(Folder)
    {
        /// <summary>Builds <paramref name="component"/> from this folder, computing in <paramref name="computeType"/> (see <see cref="BuiltComponents.Build"/>).</summary>
        public IDisposable Build(string component, TensorElementType computeType, ComponentBuildSettings settings)
        {
            ComponentConfig config = ComponentConfig.Load(Config);
            var files = new List<SafetensorsFile>(WeightFiles.Count);
            try
            {
                foreach (string file in WeightFiles)
                {
                    files.Add(SafetensorsFile.Open(file));
                }

                // The session reads the weights from the files itself once created; the headers are needed only to build.
                return BuiltComponents.Build(component, config, new SafetensorsParameters(files, computeType), settings);
            }
            finally
            {
                foreach (SafetensorsFile file in files)
                {
                    file.Dispose();
                }
            }
        }
    }

    /// <summary>
    /// A graph component of a single-file checkpoint: its weights read from the file under the original key names, its
    /// configuration the base model's, adjusted to the file.
    /// </summary>
    /// <param name="Checkpoint">The checkpoint.</param>
    /// <param name="BaseModel">The base model's folder in the diffusers layout.</param>
    public sealed record SingleFileComponent(SingleFileCheckpoint Checkpoint, string BaseModel) : ComponentSource(Checkpoint.Path)
    {
        /// <summary>Whether a single file holds <paramref name="component"/>: the text encoder, the UNet and the VAE, not the safety checker.</summary>
        public static bool Holds(string component) => component is ModelComponents.TextEncoder or ModelComponents.UNet or ModelComponents.VaeDecoder or ModelComponents.VaeEncoder;

        /// <summary>Builds <paramref name="component"/> from the file, computing in <paramref name="computeType"/> (see <see cref="BuiltComponents.Build"/>).</summary>
        /// <exception cref="ModelLoadException">The base model has no diffusers configuration of the component, or the file's weights do not fit it.</exception>
        public IDisposable Build(string component, TensorElementType computeType, ComponentBuildSettings settings)
        {
            string configPath = System.IO.Path.Combine(BaseModel, DiffusersFolderName(component), ConfigName);
            if (!File.Exists(configPath))
            {
                throw new ModelLoadException(
                    $"The base model '{BaseModel}' of the single file '{Checkpoint.Path}' has no {DiffusersFolderName(component)}/{ConfigName}: a base model is a Stable Diffusion 1.x " +
                    "model in the diffusers layout (such as stable-diffusion-v1-5/stable-diffusion-v1-5), whose configurations describe the file's components.", BaseModel);
            }

            ComponentConfig baseConfig = ComponentConfig.Load(configPath);
            (ComponentConfig config, SafetensorsParameters weights) = component switch
            {
                ModelComponents.UNet => Checkpoint.UNet(baseConfig, computeType),
                ModelComponents.TextEncoder => Checkpoint.TextEncoder(baseConfig, computeType),
                _ => Checkpoint.Vae(baseConfig, computeType),
            };
            return BuiltComponents.Build(component, config, weights, settings);
        }
    }
}
