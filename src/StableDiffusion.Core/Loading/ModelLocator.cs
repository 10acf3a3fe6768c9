using Microsoft.Extensions.Logging;
using StableDiffusion.Hub;
using StableDiffusion.Models;
using StableDiffusion.Pipelines;

namespace StableDiffusion.Loading;

/// <summary>Turns what a user passes to <c>FromPretrained</c> (a local folder or a Hub repository id) into a local folder.</summary>
internal static partial class ModelLocator
{
    // The components whose weights a single-file checkpoint holds: from its base model, only their configurations.
    private static readonly string[] SingleFileComponents = [ModelComponents.TextEncoder, ModelComponents.UNet, ComponentSource.DiffusersFolderName(ModelComponents.VaeDecoder)];

    /// <summary>The folder to load: <paramref name="modelIdOrPath"/> itself, or the Hub snapshot holding the files the pipeline needs.</summary>
    /// <param name="modelIdOrPath">A folder, or a Hub repository id.</param>
    /// <param name="options">Revision, variant, Hub settings and progress.</param>
    /// <param name="logger">Receives where the model comes from.</param>
    /// <param name="cancellationToken">Cancels a download.</param>
    /// <param name="skippedComponents">Components the caller provides itself, not to download; none when null.</param>
    public static Task<string> ResolveAsync(
        string modelIdOrPath, StableDiffusionPipelineOptions options, ILogger logger, CancellationToken cancellationToken, IReadOnlySet<string>? skippedComponents = null) =>
        ResolveAsync(modelIdOrPath, options, logger,
            (snapshot, ct) => DownloadPipelineFilesAsync(snapshot, options.Variant, skippedComponents ?? new HashSet<string>(), logger, ct), cancellationToken);

    /// <summary>
    /// The base model of a single-file checkpoint as a local folder: a folder as given, or from the Hub only the files a
    /// single file lacks (<paramref name="withSafetyChecker"/>: the safety checker's weights too, in the options' variant).
    /// </summary>
    public static Task<string> ResolveBaseModelAsync(string baseModel, bool withSafetyChecker, StableDiffusionPipelineOptions options, ILogger logger, CancellationToken cancellationToken) =>
        ResolveAsync(baseModel, options, logger,
            (snapshot, ct) => DownloadBaseModelFilesAsync(snapshot, withSafetyChecker, options.Variant, logger, ct), cancellationToken);

    /// <summary>
    /// The components a pipeline's <see cref="StableDiffusionPipelineOptions.Components"/> replace, by the folder names of a
    /// repository: their own names, and <c>vae</c> when both VAE graphs are given.
    /// </summary>
    public static IReadOnlySet<string> GivenComponents(StableDiffusionPipelineOptions options)
    {
        var given = new HashSet<string>(options.Components.Keys, StringComparer.Ordinal);
        if (given.Contains(ModelComponents.VaeDecoder) && given.Contains(ModelComponents.VaeEncoder))
        {
            given.Add(ComponentSource.DiffusersFolderName(ModelComponents.VaeDecoder));
        }

        return given;
    }

    private static async Task<string> ResolveAsync(string modelIdOrPath, StableDiffusionPipelineOptions options, ILogger logger,
        Func<HubSnapshot, CancellationToken, Task> download, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelIdOrPath);
        if (Directory.Exists(modelIdOrPath))
        {
            return Path.GetFullPath(modelIdOrPath);
        }

        if (!LooksLikeRepositoryId(modelIdOrPath))
        {
            throw new ModelLoadException(
                $"The model folder '{Path.GetFullPath(modelIdOrPath)}' does not exist. Pass a folder in the diffusers ONNX layout, or a Hugging Face repository id such as '{DiffusionPipeline.DefaultModelId}'.",
                modelIdOrPath);
        }

        // Checked before the Hub is asked, so a typo fails at once rather than after a round trip (or five retries offline).
        if (!HubClient.IsValidRepoId(modelIdOrPath))
        {
            throw new ModelLoadException(
                $"The model '{modelIdOrPath}' is neither a folder here ('{Path.GetFullPath(modelIdOrPath)}' does not exist) nor a Hugging Face repository id " +
                $"('name' or 'namespace/name' of letters, digits, '-', '_' and '.', such as '{DiffusionPipeline.DefaultModelId}').",
                modelIdOrPath);
        }

        LogFromHub(logger, modelIdOrPath, options.Revision ?? HubClient.DefaultRevision);
        using var client = new HubClient(options.Hub ?? HubOptions.FromEnvironment(), handler: null, options.LoggerFactory?.CreateLogger<HubClient>());
        try
        {
            HubSnapshot snapshot = await client.GetSnapshotAsync(modelIdOrPath, options.Revision, options.DownloadProgress, cancellationToken).ConfigureAwait(false);
            await download(snapshot, cancellationToken).ConfigureAwait(false);
            return snapshot.Folder;
        }
        catch (HubNotFoundException ex) when (ex.Missing == HubMissingItem.Repository)
        {
            throw new HubNotFoundException(
                $"'{modelIdOrPath}' is neither a local folder nor a repository on {client.Options.Endpoint}: check the spelling, or the path if you meant a folder. ({ex.Message})", ex)
            {
                RepoId = modelIdOrPath,
                Missing = HubMissingItem.Repository,
            };
        }
    }

    /// <summary>
    /// Downloads what the pipeline loads from a diffusers repository, and nothing else: <c>model_index.json</c> first, then
    /// the files <see cref="StableDiffusionFiles"/> chooses from it and the listing (for an ONNX export, then the external
    /// weights its graphs name).
    /// </summary>
    internal static async Task DownloadPipelineFilesAsync(
        HubSnapshot snapshot, string? variant, IReadOnlySet<string> skippedComponents, ILogger logger, CancellationToken cancellationToken)
    {
        IReadOnlyList<string> files = RepositoryFiles(snapshot);
        string modelIndex = await snapshot.DownloadFileAsync(StableDiffusionFiles.ModelIndex, cancellationToken).ConfigureAwait(false);
        IReadOnlyList<StableDiffusionFiles.Component> components = StableDiffusionFiles.ReadComponents(snapshot.RepoId, modelIndex);
        if (!StableDiffusionFiles.IsOnnxExport(components))
        {
            await snapshot.DownloadFilesAsync(DiffusersFiles(snapshot, files, components, variant, skippedComponents, logger), cancellationToken).ConfigureAwait(false);
            return;
        }

        if (snapshot.Files is null)
        {
            // Without a listing, the graphs are required all the same: asking for them names those not cached.
            files = [.. files.Union(components.Where(c => c.IsOnnx).Select(c => c.GraphPath), StringComparer.Ordinal)];
        }

        List<string> selection = [.. StableDiffusionFiles.ForOnnxRepo(snapshot.RepoId, snapshot.Revision, files, components, skippedComponents)];
        if (!snapshot.IsCacheOnly)
        {
            await snapshot.DownloadFilesAsync(selection, cancellationToken).ConfigureAwait(false);
            selection.Clear();
        }

        // The graphs name their external weights. From the cache only, the graphs at hand are read first, so that one
        // request for everything names every missing file at once.
        foreach (StableDiffusionFiles.Component component in components.Where(c => c.IsOnnx && !skippedComponents.Contains(c.Name)))
        {
            if (snapshot.FindCachedFile(component.GraphPath) is not { } graph)
            {
                continue;
            }

            foreach (string path in StableDiffusionFiles.ExternalDataPaths(snapshot.RepoId, component.GraphPath, graph).Where(path => !selection.Contains(path)))
            {
                if (snapshot.Files is not null && !snapshot.Files.Contains(path))
                {
                    throw new HubNotFoundException(
                        $"{component.GraphPath} of '{snapshot.RepoId}' at revision '{snapshot.Revision}' keeps its weights in '{path}', which the repository does not have.")
                    {
                        RepoId = snapshot.RepoId,
                        Revision = snapshot.Revision,
                        FilePath = path,
                        Missing = HubMissingItem.File,
                    };
                }

                selection.Add(path);
            }
        }

        await snapshot.DownloadFilesAsync(selection, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Downloads what a single-file checkpoint lacks from its base model's diffusers repository: <c>model_index.json</c>,
    /// the tokenizer, scheduler and feature extractor, the configurations of the components whose weights the file has, and
    /// (<paramref name="withSafetyChecker"/>) the safety checker.
    /// </summary>
    internal static async Task DownloadBaseModelFilesAsync(
        HubSnapshot snapshot, bool withSafetyChecker, string? variant, ILogger logger, CancellationToken cancellationToken)
    {
        IReadOnlyList<string> files = RepositoryFiles(snapshot);
        string modelIndex = await snapshot.DownloadFileAsync(StableDiffusionFiles.ModelIndex, cancellationToken).ConfigureAwait(false);
        IReadOnlyList<StableDiffusionFiles.Component> components = StableDiffusionFiles.ReadComponents(snapshot.RepoId, modelIndex);
        var skipped = new HashSet<string>(SingleFileComponents, StringComparer.Ordinal);
        if (!withSafetyChecker)
        {
            skipped.Add(ModelComponents.SafetyChecker);
        }

        IEnumerable<string> configs = SingleFileComponents.Select(c => $"{c}/{StableDiffusionFiles.ConfigFileName}").Where(files.Contains);
        await snapshot.DownloadFilesAsync(
            [.. DiffusersFiles(snapshot, files, components, withSafetyChecker ? variant : null, skipped, logger), .. configs], cancellationToken).ConfigureAwait(false);
    }

    // The repository's files, which must include model_index.json. Offline without a cached listing, what is cached is
    // what there is: requesting it checks every file is there.
    private static IReadOnlyList<string> RepositoryFiles(HubSnapshot snapshot)
    {
        IReadOnlyList<string> files = snapshot.Files ?? snapshot.ListCachedFiles();
        if (snapshot.Files is not null && !files.Contains(StableDiffusionFiles.ModelIndex))
        {
            throw new HubNotFoundException(
                $"'{snapshot.RepoId}' at revision '{snapshot.Revision}' has no {StableDiffusionFiles.ModelIndex}: it is not a diffusers pipeline repository. " +
                $"Use a diffusers repository such as '{DiffusionPipeline.DefaultModelId}', or load a single checkpoint file with FromSingleFileAsync.")
            {
                RepoId = snapshot.RepoId,
                Revision = snapshot.Revision,
                FilePath = StableDiffusionFiles.ModelIndex,
                Missing = HubMissingItem.File,
            };
        }

        return files;
    }

    // The files of a repository in the diffusers layout that the components take (StableDiffusionFiles.ForDiffusersRepo).
    private static IReadOnlyList<string> DiffusersFiles(HubSnapshot snapshot, IReadOnlyList<string> files, IReadOnlyList<StableDiffusionFiles.Component> components,
        string? variant, IReadOnlySet<string> skippedComponents, ILogger logger)
    {
        DiffusersFileSelection selection = StableDiffusionFiles.ForDiffusersRepo(snapshot.RepoId, files, [.. components.Select(c => c.Name)], variant, skippedComponents);
        if (selection.ComponentsWithoutVariant.Count > 0)
        {
            LogVariantFallback(logger, snapshot.RepoId, variant!, string.Join(", ", selection.ComponentsWithoutVariant));
        }

        return selection.Files;
    }

    /// <summary>How the model is named in each image's parameters: the Hub id as given, or the folder's full path.</summary>
    public static string DisplayName(string modelIdOrPath, string folder) => Directory.Exists(modelIdOrPath) ? folder : modelIdOrPath;

    // A Hub id is "name" or "org/name"; anything with more separators, a root or a relative prefix is a path.
    private static bool LooksLikeRepositoryId(string value) =>
        !Path.IsPathRooted(value) && !value.StartsWith('.') && !value.Contains('\\', StringComparison.Ordinal) && value.Count(c => c == '/') <= 1 && !value.EndsWith('/');

    [LoggerMessage(Level = LogLevel.Information, Message = "No local folder '{ModelId}': loading it from the Hugging Face Hub (revision {Revision}).")]
    private static partial void LogFromHub(ILogger logger, string modelId, string revision);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{ModelId} has no '{Variant}' weights for {Components}: loading their plain weights instead (a mixture of variants, as diffusers loads it).")]
    private static partial void LogVariantFallback(ILogger logger, string modelId, string variant, string components);
}
