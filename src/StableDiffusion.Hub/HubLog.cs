using Microsoft.Extensions.Logging;

namespace StableDiffusion.Hub;

/// <summary>
/// The Hub client's log messages. URLs are logged without their query string (signed storage URLs carry credentials in
/// it) and the token is never an argument.
/// </summary>
internal static partial class HubLog
{
    [LoggerMessage(1, LogLevel.Debug, "Resolving {RepoId} at revision '{Revision}'")]
    public static partial void ResolvingRevision(ILogger logger, string repoId, string revision);

    [LoggerMessage(2, LogLevel.Information, "Revision '{Revision}' of {RepoId} is commit {Commit}")]
    public static partial void ResolvedRevision(ILogger logger, string repoId, string revision, string commit);

    [LoggerMessage(3, LogLevel.Information, "Offline: using the cached snapshot {Commit} of {RepoId} (revision '{Revision}')")]
    public static partial void UsingCacheOffline(ILogger logger, string repoId, string revision, string commit);

    [LoggerMessage(4, LogLevel.Warning, "The Hub could not be used ({Reason}); using the cached snapshot {Commit} of {RepoId} (revision '{Revision}')")]
    public static partial void UsingCacheAfterError(ILogger logger, string repoId, string revision, string commit, string reason);

    [LoggerMessage(5, LogLevel.Debug, "Listed {FileCount} files of {RepoId} at {Commit} ({Source})")]
    public static partial void Listed(ILogger logger, string repoId, string commit, int fileCount, string source);

    [LoggerMessage(6, LogLevel.Information, "Downloading {RepoId}/{FilePath} ({Size} bytes)")]
    public static partial void DownloadingFile(ILogger logger, string repoId, string filePath, long size);

    [LoggerMessage(7, LogLevel.Debug, "{FilePath}: {Downloaded} of {Total} bytes")]
    public static partial void FileProgress(ILogger logger, string filePath, long downloaded, long total);

    [LoggerMessage(8, LogLevel.Debug, "Downloaded {RepoId}/{FilePath} ({Size} bytes, verified)")]
    public static partial void DownloadedFile(ILogger logger, string repoId, string filePath, long size);

    [LoggerMessage(9, LogLevel.Debug, "{RepoId}/{FilePath} is already in the cache")]
    public static partial void CacheHit(ILogger logger, string repoId, string filePath);

    [LoggerMessage(10, LogLevel.Warning, "Connection dropped while downloading {FilePath} at byte {Offset} ({Error}); resuming ({AttemptsLeft} attempts left)")]
    public static partial void Resuming(ILogger logger, string filePath, long offset, string error, int attemptsLeft);

    [LoggerMessage(11, LogLevel.Warning, "The server ignored the range request for {FilePath}; restarting it from the first byte")]
    public static partial void RestartingFromZero(ILogger logger, string filePath);

    [LoggerMessage(12, LogLevel.Warning, "{Method} {Url} answered {Status}; retrying in {Delay} (attempt {Attempt} of {MaxAttempts})")]
    public static partial void RetryingStatus(ILogger logger, string method, string url, int status, TimeSpan delay, int attempt, int maxAttempts);

    [LoggerMessage(13, LogLevel.Warning, "{Method} {Url} failed ({Error}); retrying in {Delay} (attempt {Attempt} of {MaxAttempts})")]
    public static partial void RetryingError(ILogger logger, string method, string url, string error, TimeSpan delay, int attempt, int maxAttempts);

    [LoggerMessage(14, LogLevel.Information, "Waiting for another download of {FilePath} to finish (lock {LockPath})")]
    public static partial void WaitingForLock(ILogger logger, string filePath, string lockPath);

    [LoggerMessage(15, LogLevel.Information, "{RepoId} at {Commit} is ready in {SnapshotFolder} ({FileCount} files, {DownloadedBytes} bytes downloaded)")]
    public static partial void SnapshotReady(ILogger logger, string repoId, string commit, string snapshotFolder, int fileCount, long downloadedBytes);

    [LoggerMessage(16, LogLevel.Warning, "Cached {FilePath} is {ActualSize} bytes but the Hub lists {ExpectedSize}; downloading it again")]
    public static partial void CachedFileWrongSize(ILogger logger, string filePath, long actualSize, long expectedSize);

    [LoggerMessage(17, LogLevel.Warning, "Symbolic links are not available in {CacheDirectory}; snapshot files are copies of their blobs (uses more disk space)")]
    public static partial void SymbolicLinksUnavailable(ILogger logger, string cacheDirectory);

    [LoggerMessage(18, LogLevel.Warning, "Could not write {Path} ({Error}); continuing")]
    public static partial void CacheWriteFailed(ILogger logger, string path, string error);
}
