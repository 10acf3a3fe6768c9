namespace StableDiffusion.Hub;

/// <summary>Adds up the bytes of parallel file downloads into <see cref="HubDownloadProgress"/> reports.</summary>
/// <remarks>Reports are throttled to one per MiB of data, plus one per finished file, so that a 3 GB file does not flood a UI.</remarks>
internal sealed class ProgressTracker(string repoId, IProgress<HubDownloadProgress>? progress)
{
    private const long ReportEvery = 1 << 20;

    private long _downloaded;
    private long _total;
    private long _unreported;
    private int _filesCompleted;
    private int _totalFiles;

    public long BytesDownloaded => Interlocked.Read(ref _downloaded);

    /// <summary>Announces a file to download.</summary>
    public void AddFile(long size)
    {
        Interlocked.Add(ref _total, size);
        Interlocked.Increment(ref _totalFiles);
    }

    /// <summary>Counts bytes written (negative when a restart discards them).</summary>
    public void OnBytes(string filePath, long delta)
    {
        Interlocked.Add(ref _downloaded, delta);
        if (progress is not null && (delta < 0 || Interlocked.Add(ref _unreported, delta) >= ReportEvery))
        {
            Interlocked.Exchange(ref _unreported, 0);
            Report(filePath);
        }
    }

    public void OnFileCompleted(string filePath)
    {
        Interlocked.Increment(ref _filesCompleted);
        Report(filePath);
    }

    private void Report(string filePath) =>
        progress?.Report(new HubDownloadProgress(
            repoId, filePath, Interlocked.Read(ref _downloaded), Interlocked.Read(ref _total), Volatile.Read(ref _filesCompleted), Volatile.Read(ref _totalFiles)));
}
