namespace StableDiffusion.Hub;

/// <summary>How far a download from the Hub has come, in bytes.</summary>
/// <param name="RepoId">The repository being downloaded.</param>
/// <param name="FilePath">The file whose bytes produced this report (repository path, <c>/</c>-separated).</param>
/// <param name="BytesDownloaded">Bytes received so far for this call, over all files. It drops back when a server ignores a
/// resume request and a file restarts from its first byte.</param>
/// <param name="TotalBytes">Bytes to receive for the files known so far (files already in the cache are not counted).
/// It can grow: a Stable Diffusion download learns of the weight files once the graphs that name them have arrived.</param>
/// <param name="FilesCompleted">Files downloaded so far.</param>
/// <param name="TotalFiles">Files to download known so far.</param>
/// <remarks>Files download in parallel, so reports can come from several threads at once.</remarks>
public readonly record struct HubDownloadProgress(
    string RepoId,
    string FilePath,
    long BytesDownloaded,
    long TotalBytes,
    int FilesCompleted,
    int TotalFiles);
