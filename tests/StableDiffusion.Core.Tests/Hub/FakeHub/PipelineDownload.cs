using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StableDiffusion.Hub;
using StableDiffusion.Loading;

namespace StableDiffusion.Core.Tests.Hub.FakeHub;

/// <summary>What <c>FromPretrained</c> downloads from a repository, through a given client (the loader's own step, without loading).</summary>
internal static class PipelineDownload
{
    public static async Task<string> DownloadStableDiffusionAsync(
        this HubClient client,
        string repoId,
        string? revision = null,
        IProgress<HubDownloadProgress>? progress = null,
        string? variant = null,
        IReadOnlySet<string>? skippedComponents = null,
        ILogger? logger = null,
        CancellationToken cancellationToken = default)
    {
        HubSnapshot snapshot = await client.GetSnapshotAsync(repoId, revision, progress, cancellationToken);
        await ModelLocator.DownloadPipelineFilesAsync(snapshot, variant, skippedComponents ?? new HashSet<string>(), logger ?? NullLogger.Instance, cancellationToken);
        return snapshot.Folder;
    }
}
