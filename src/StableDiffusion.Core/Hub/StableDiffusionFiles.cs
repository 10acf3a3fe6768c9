using System.Text.Json;
using StableDiffusion.Onnx;

namespace StableDiffusion.Hub;

/// <summary>
/// Which files of a diffusers ONNX repository <c>FromPretrained</c> needs: <c>model_index.json</c>; for every component it
/// names (text_encoder, unet, vae_decoder, vae_encoder, safety_checker, tokenizer, scheduler, feature_extractor, …) the
/// <c>.json</c> and <c>.txt</c> files directly in its folder (configs, tokenizer vocabulary and merges) and its
/// <c>model.onnx</c>; then the external-data files those graphs name. Other variants in the same repository (PyTorch
/// <c>.safetensors</c>/<c>.bin</c>, fp16 sub-folders, other <c>.onnx</c> files) are left alone.
/// </summary>
internal static class StableDiffusionFiles
{
    /// <summary>The pipeline description at the repository root.</summary>
    public const string ModelIndex = Loading.ModelIndex.FileName;

    /// <summary>The graph file of an ONNX component.</summary>
    public const string GraphFileName = "model.onnx";

    /// <summary>The class diffusers' <c>model_index.json</c> gives ONNX components.</summary>
    private const string OnnxClassName = "OnnxRuntimeModel";

    /// <summary>A component named by <c>model_index.json</c>.</summary>
    /// <param name="Name">The component and its folder (<c>unet</c>).</param>
    /// <param name="ClassName">Its class (<c>OnnxRuntimeModel</c>, <c>CLIPTokenizer</c>, <c>PNDMScheduler</c>, …).</param>
    public sealed record Component(string Name, string ClassName)
    {
        /// <summary>Whether the component is an ONNX graph (<c>model.onnx</c>).</summary>
        public bool IsOnnx => ClassName == OnnxClassName;

        public string GraphPath => $"{Name}/{GraphFileName}";
    }

    /// <summary>Reads the components of <c>model_index.json</c>: every <c>"name": ["library", "Class"]</c> entry with both set.</summary>
    /// <exception cref="HubIntegrityException">The file is not a diffusers pipeline description, or a component name is not a plain folder name.</exception>
    public static IReadOnlyList<Component> ReadComponents(string repoId, string modelIndexPath)
    {
        try
        {
            using JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(modelIndexPath));
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new JsonException("the root is not an object");
            }

            var components = new List<Component>();
            foreach (JsonProperty property in document.RootElement.EnumerateObject())
            {
                if (property.Name.StartsWith('_') || property.Value.ValueKind != JsonValueKind.Array || property.Value.GetArrayLength() != 2
                    || property.Value[0].ValueKind != JsonValueKind.String || property.Value[1].ValueKind != JsonValueKind.String)
                {
                    continue;
                }

                RepoNames.ValidateFilePath(repoId, property.Name, $"(a component named by {ModelIndex})");
                if (property.Name.Contains('/', StringComparison.Ordinal))
                {
                    throw new HubIntegrityException($"Refused the component name '{property.Name}' in {ModelIndex} of '{repoId}': a component is a single folder.")
                    {
                        RepoId = repoId,
                        FilePath = property.Name,
                    };
                }

                components.Add(new Component(property.Name, property.Value[1].GetString()!));
            }

            if (!components.Any(c => c.IsOnnx))
            {
                string pipeline = document.RootElement.TryGetProperty("_class_name", out JsonElement name) ? name.ToString() : "an unknown pipeline";
                throw new HubException(
                    $"'{repoId}' is not an ONNX export of Stable Diffusion: its {ModelIndex} describes {pipeline} with no {OnnxClassName} component. " +
                    $"Use an ONNX repository such as '{HubClient.DefaultModelId}' (or the repository's ONNX revision).")
                {
                    RepoId = repoId,
                };
            }

            return components;
        }
        catch (JsonException e)
        {
            throw new HubIntegrityException($"{ModelIndex} of '{repoId}' is not valid JSON ({e.Message}); delete '{modelIndexPath}' to download it again.", e)
            {
                RepoId = repoId,
                FilePath = ModelIndex,
            };
        }
    }

    /// <summary>The files to download before the graphs are read: <c>model_index.json</c>, each component's configs and <c>model.onnx</c>.</summary>
    /// <exception cref="HubNotFoundException">An ONNX component has no <c>model.onnx</c> in the repository.</exception>
    public static IReadOnlyList<string> Select(string repoId, string revision, IEnumerable<string> repoFiles, IReadOnlyList<Component> components)
    {
        var byFolder = components.ToDictionary(c => c.Name, StringComparer.Ordinal);
        var selected = new List<string>();
        foreach (string path in repoFiles)
        {
            if (path == ModelIndex)
            {
                selected.Add(path);
                continue;
            }

            int slash = path.IndexOf('/', StringComparison.Ordinal);
            if (slash <= 0 || !byFolder.TryGetValue(path[..slash], out Component? component))
            {
                continue;
            }

            string name = path[(slash + 1)..];
            if (name.Contains('/', StringComparison.Ordinal))
            {
                continue;
            }

            if (name.EndsWith(".json", StringComparison.Ordinal) || name.EndsWith(".txt", StringComparison.Ordinal) || (component.IsOnnx && name == GraphFileName))
            {
                selected.Add(path);
            }
        }

        if (components.FirstOrDefault(c => c.IsOnnx && !selected.Contains(c.GraphPath)) is { } missing)
        {
            throw new HubNotFoundException(
                $"'{repoId}' at revision '{revision}' has no {missing.GraphPath}, which its {ModelIndex} announces for the ONNX component '{missing.Name}'.")
            {
                RepoId = repoId,
                Revision = revision,
                FilePath = missing.GraphPath,
                Missing = HubMissingItem.File,
            };
        }

        return selected;
    }

    /// <summary>The repository paths of the external-data files the graph at <paramref name="graphFile"/> names (relative to its folder).</summary>
    /// <exception cref="HubIntegrityException">The graph is not a valid ONNX file, or names a location outside its folder.</exception>
    public static IReadOnlyList<string> ExternalDataPaths(string repoId, string graphRepoPath, string graphFile)
    {
        IReadOnlyList<string> locations;
        try
        {
            locations = OnnxExternalData.ReadLocations(graphFile);
        }
        catch (InvalidDataException e)
        {
            throw new HubIntegrityException($"{graphRepoPath} of '{repoId}' is not a valid ONNX model ({e.Message}). Delete '{graphFile}' to download it again.", e)
            {
                RepoId = repoId,
                FilePath = graphRepoPath,
            };
        }

        string folder = graphRepoPath[..(graphRepoPath.LastIndexOf('/') + 1)];
        var paths = new List<string>(locations.Count);
        foreach (string location in locations)
        {
            string relative = location;
            while (relative.StartsWith("./", StringComparison.Ordinal))
            {
                relative = relative[2..];
            }

            RepoNames.ValidateFilePath(repoId, relative, $"(external data named by {graphRepoPath})");
            paths.Add(folder + relative);
        }

        return paths;
    }
}
