using System.Text.Json;
using System.Text.RegularExpressions;
using StableDiffusion.Hub;
using StableDiffusion.Models;
using StableDiffusion.Onnx;

namespace StableDiffusion.Loading;

/// <summary>
/// Which files of a diffusers repository a pipeline needs, from its file listing and <c>model_index.json</c>, so that a Hub
/// download takes nothing else:
/// <list type="bullet">
/// <item>an ONNX export (<see cref="ForOnnxRepo"/>): for every component, the <c>.json</c> and <c>.txt</c> files directly
/// in its folder and its <c>model.onnx</c>, then the external-data files those graphs name;</item>
/// <item>the PyTorch layout (<see cref="ForDiffusersRepo"/>): for every component with weights, its <c>config.json</c>
/// and its <c>.safetensors</c> weights in one variant; for every other component (tokenizer, scheduler, feature
/// extractor), the files in its folder.</item>
/// </list>
/// Other variants, pickled duplicates (<c>.bin</c>, <c>.ckpt</c>), Flax weights and single-file checkpoints beside the
/// components are left alone.
/// </summary>
internal static partial class StableDiffusionFiles
{
    /// <summary>The pipeline description at the repository root.</summary>
    public const string ModelIndex = Loading.ModelIndex.FileName;

    /// <summary>The graph file of an ONNX component.</summary>
    public const string GraphFileName = "model.onnx";

    /// <summary>The configuration of a component with weights.</summary>
    public const string ConfigFileName = "config.json";

    /// <summary>The class diffusers' <c>model_index.json</c> gives ONNX components.</summary>
    private const string OnnxClassName = "OnnxRuntimeModel";

    /// <summary>The file name stems diffusers and transformers save weights under.</summary>
    private const string WeightsPrefix = "(diffusion_pytorch_model|model|pytorch_model)";

    /// <summary>The numbering of sharded weights (<c>-00001-of-00002</c>).</summary>
    private const string ShardSuffix = @"-\d{5}-of-\d{5}";

    /// <summary>The extensions of weights in any format: a folder with such a file is a component with weights.</summary>
    private static readonly string[] WeightsExtensions = [".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".msgpack", ".onnx", ".pb", ".flashpack"];

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
    /// <exception cref="HubIntegrityException">The file is not valid JSON, or a component name is not a plain folder name.</exception>
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

                if (!HubClient.IsValidFilePath(property.Name) || property.Name.Contains('/', StringComparison.Ordinal))
                {
                    string reason = HubClient.IsValidFilePath(property.Name)
                        ? "a component is a single folder of the repository"
                        : "it could lead outside the cache folder (an absolute path, a '..' or '.' segment, '\\', ':' or a control character)";
                    throw new HubIntegrityException($"Refused the component name '{property.Name}' in {ModelIndex} of '{repoId}': {reason}. Nothing was downloaded for it.")
                    {
                        RepoId = repoId,
                        FilePath = property.Name,
                    };
                }

                components.Add(new Component(property.Name, property.Value[1].GetString()!));
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

    /// <summary>Whether the components describe an ONNX export (any <c>OnnxRuntimeModel</c> component) rather than the PyTorch layout.</summary>
    public static bool IsOnnxExport(IReadOnlyList<Component> components) => components.Any(c => c.IsOnnx);

    /// <summary>
    /// The files of an ONNX export to download before the graphs are read: <c>model_index.json</c>, each component's
    /// configs and <c>model.onnx</c>; none of the <paramref name="skippedComponents"/>' files.
    /// </summary>
    /// <exception cref="HubNotFoundException">An ONNX component has no <c>model.onnx</c> in the repository.</exception>
    public static IReadOnlyList<string> ForOnnxRepo(
        string repoId, string revision, IEnumerable<string> repoFiles, IReadOnlyList<Component> components, IReadOnlySet<string> skippedComponents)
    {
        components = [.. components.Where(c => !skippedComponents.Contains(c.Name))];
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

    /// <summary>
    /// The files of a repository in diffusers' PyTorch layout that a pipeline loads, chosen as diffusers'
    /// <c>DiffusionPipeline.download</c> chooses them with safetensors: <c>model_index.json</c>; for each component it
    /// lists that keeps weights in its folder, <c>config.json</c> and the <c>.safetensors</c> weights (one file, or the
    /// shards and their index) in one variant; for each other component (tokenizer, scheduler, feature extractor), every
    /// file directly in its folder.
    /// </summary>
    /// <remarks>
    /// With a <paramref name="variant"/> (<c>fp16</c>), a component takes <c>*.fp16.safetensors</c>
    /// (<c>*.fp16-00001-of-00002.safetensors</c> and <c>*.safetensors.index.fp16.json</c> when sharded; also the older
    /// <c>*-00001-of-00002.fp16.safetensors</c> naming) and falls back to its plain weights when it has none, as diffusers
    /// does; <see cref="DiffusersFileSelection.ComponentsWithoutVariant"/> names those. If no component has the variant,
    /// diffusers refuses, and so does this. Pickled weights (<c>.bin</c>, <c>.ckpt</c>), Flax and ONNX files, other variants
    /// (<c>non_ema</c>) and single-file checkpoints at the root are never taken.
    /// </remarks>
    /// <param name="source">The repository id or folder, for messages.</param>
    /// <param name="repoFiles">Every file of the repository, <c>/</c>-separated paths relative to its root.</param>
    /// <param name="components">The components <c>model_index.json</c> lists (without those it marks absent).</param>
    /// <param name="variant">The weights variant (diffusers' <c>variant</c>, such as <c>fp16</c>); <see langword="null"/> for the plain weights.</param>
    /// <param name="skippedComponents">Components the caller provides itself: none of their files are taken.</param>
    /// <returns>The files, in ordinal order, and the components that fell back to their plain weights.</returns>
    /// <exception cref="ModelLoadException">A component keeps its weights in no <c>.safetensors</c> file, or no component has the variant.</exception>
    public static DiffusersFileSelection ForDiffusersRepo(
        string source, IReadOnlyList<string> repoFiles, IReadOnlyCollection<string> components, string? variant, IReadOnlySet<string> skippedComponents)
    {
        var filesByComponent = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (string component in components.Where(c => !skippedComponents.Contains(c)))
        {
            filesByComponent[component] = [];
        }

        var selected = new List<string>();
        foreach (string path in repoFiles)
        {
            if (path == ModelIndex)
            {
                selected.Add(path);
            }
            else if (path.Split('/') is [string folder, string _] && filesByComponent.TryGetValue(folder, out List<string>? files))
            {
                files.Add(path);
            }
        }

        var withoutVariant = new List<string>();
        bool anyVariant = false;
        foreach ((string component, List<string> files) in filesByComponent.OrderBy(pair => pair.Key, StringComparer.Ordinal))
        {
            if (!files.Any(IsWeightsFile))
            {
                selected.AddRange(files);
                continue;
            }

            IReadOnlyList<string> weights = variant is null ? [] : VariantWeights(files, variant);
            if (weights.Count > 0)
            {
                anyVariant = true;
            }
            else
            {
                weights = [.. files.Where(path => PlainWeightsRegex().IsMatch(FileName(path)))];
                if (variant is not null && weights.Count > 0)
                {
                    withoutVariant.Add(component);
                }
            }

            if (weights.Count == 0)
            {
                string found = string.Join(", ", files.Where(IsWeightsFile).Select(FileName));
                throw new ModelLoadException(
                    $"The component '{component}' of '{source}' has no weights in safetensors (it has {found}). This library does not read " +
                    "pickled PyTorch files (.bin, .ckpt): use a revision of the model with .safetensors weights, or convert the component to safetensors.",
                    source);
            }

            selected.Add($"{component}/{ConfigFileName}");
            selected.AddRange(weights);
        }

        if (variant is not null && !anyVariant)
        {
            throw new ModelLoadException(
                $"'{source}' has no weights of the variant '{variant}' (files such as unet/diffusion_pytorch_model.{variant}.safetensors) in any component. " +
                "Leave the variant unset to load the plain weights, or choose a revision that has the variant.",
                source);
        }

        return new DiffusersFileSelection([.. selected.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)], withoutVariant);
    }

    /// <summary>A component's safetensors weights of <paramref name="variant"/>: diffusers' naming first, else the older sharded naming.</summary>
    private static List<string> VariantWeights(List<string> files, string variant)
    {
        string escaped = Regex.Escape(variant);
        var current = new Regex($@"^{WeightsPrefix}\.{escaped}({ShardSuffix})?\.safetensors$|^{WeightsPrefix}\.safetensors\.index\.{escaped}\.json$", RegexOptions.CultureInvariant);
        var legacy = new Regex($@"^.*{ShardSuffix}\.{escaped}\.safetensors$|^{WeightsPrefix}\.safetensors\.{escaped}\.index\.json$", RegexOptions.CultureInvariant);
        List<string> weights = [.. files.Where(path => current.IsMatch(FileName(path)))];
        return weights.Any(path => path.EndsWith(".safetensors", StringComparison.Ordinal)) ? weights : [.. files.Where(path => legacy.IsMatch(FileName(path)))];
    }

    /// <summary>Whether a file holds model weights in any format, which makes its folder a component with weights, as diffusers decides.</summary>
    private static bool IsWeightsFile(string path) =>
        WeightsExtensions.Any(extension => path.EndsWith(extension, StringComparison.Ordinal));

    private static string FileName(string path) => path[(path.LastIndexOf('/') + 1)..];

    /// <summary>Plain (no variant) safetensors weights: one file, or the shards and their index.</summary>
    [GeneratedRegex($@"^{WeightsPrefix}({ShardSuffix})?\.safetensors$|^{WeightsPrefix}\.safetensors\.index\.json$", RegexOptions.CultureInvariant)]
    private static partial Regex PlainWeightsRegex();

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

            if (!HubClient.IsValidFilePath(relative))
            {
                throw new HubIntegrityException(
                    $"Refused the external-data location '{location}' named by {graphRepoPath} of '{repoId}': it could lead outside the model folder. Nothing was downloaded for it.")
                {
                    RepoId = repoId,
                    FilePath = relative,
                };
            }

            paths.Add(folder + relative);
        }

        return paths;
    }
}

/// <summary>What <see cref="StableDiffusionFiles.ForDiffusersRepo"/> chose.</summary>
/// <param name="Files">The repository paths to download or load, in ordinal order.</param>
/// <param name="ComponentsWithoutVariant">The components that have no weights of the variant asked for and take their plain weights (worth a warning, as diffusers gives).</param>
internal sealed record DiffusersFileSelection(IReadOnlyList<string> Files, IReadOnlyList<string> ComponentsWithoutVariant);
