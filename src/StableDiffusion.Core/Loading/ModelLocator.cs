using Microsoft.Extensions.Logging;
using StableDiffusion.Hub;
using StableDiffusion.Models;
using StableDiffusion.Pipelines;

namespace StableDiffusion.Loading;

/// <summary>Turns what a user passes to <c>FromPretrained</c> (a local folder or a Hub repository id) into a local folder.</summary>
internal static partial class ModelLocator
{
    public static async Task<string> ResolveAsync(string modelIdOrPath, StableDiffusionPipelineOptions options, ILogger logger, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelIdOrPath);
        if (Directory.Exists(modelIdOrPath))
        {
            return Path.GetFullPath(modelIdOrPath);
        }

        if (!LooksLikeRepositoryId(modelIdOrPath))
        {
            throw new ModelLoadException(
                $"The model folder '{Path.GetFullPath(modelIdOrPath)}' does not exist. Pass a folder in the diffusers ONNX layout, or a Hugging Face repository id such as '{HubClient.DefaultModelId}'.",
                modelIdOrPath);
        }

        // Checked before the Hub is asked, so a typo fails at once rather than after a round trip (or five retries offline).
        if (!RepoNames.IsValidRepoId(modelIdOrPath))
        {
            throw new ModelLoadException(
                $"The model '{modelIdOrPath}' is neither a folder here ('{Path.GetFullPath(modelIdOrPath)}' does not exist) nor a Hugging Face repository id " +
                $"('name' or 'namespace/name' of letters, digits, '-', '_' and '.', such as '{HubClient.DefaultModelId}').",
                modelIdOrPath);
        }

        LogFromHub(logger, modelIdOrPath, options.Revision ?? HubClient.DefaultRevision);
        using var client = new HubClient(options.Hub ?? HubOptions.FromEnvironment(), handler: null, options.LoggerFactory?.CreateLogger<HubClient>());
        try
        {
            return await client.DownloadStableDiffusionAsync(modelIdOrPath, options.Revision, options.DownloadProgress, cancellationToken).ConfigureAwait(false);
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

    /// <summary>How the model is named in each image's parameters: the Hub id as given, or the folder's full path.</summary>
    public static string DisplayName(string modelIdOrPath, string folder) => Directory.Exists(modelIdOrPath) ? folder : modelIdOrPath;

    // A Hub id is "name" or "org/name"; anything with more separators, a root or a relative prefix is a path.
    private static bool LooksLikeRepositoryId(string value) =>
        !Path.IsPathRooted(value) && !value.StartsWith('.') && !value.Contains('\\', StringComparison.Ordinal) && value.Count(c => c == '/') <= 1 && !value.EndsWith('/');

    [LoggerMessage(Level = LogLevel.Information, Message = "No local folder '{ModelId}': loading it from the Hugging Face Hub (revision {Revision}).")]
    private static partial void LogFromHub(ILogger logger, string modelId, string revision);
}
