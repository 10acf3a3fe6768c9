using Microsoft.Extensions.Logging;

namespace StableDiffusion.Hub;

/// <summary>
/// An exclusive lock on a <c>.locks/…/{etag}.lock</c> file that Python's <c>filelock</c> honours too.
/// </summary>
/// <remarks>
/// On Linux and macOS, .NET opens a <see cref="FileShare.None"/> stream with <c>flock(LOCK_EX | LOCK_NB)</c>, the call
/// <c>filelock</c> makes, so a .NET and a Python process downloading the same blob wait for each other; on Windows both
/// use the OS's exclusive open. The lock file is left in place, as <c>filelock</c> does.
/// </remarks>
internal sealed class CacheFileLock : IDisposable
{
    // Windows reports a held lock as ERROR_SHARING_VIOLATION or ERROR_LOCK_VIOLATION; Unix as EWOULDBLOCK (11 on Linux, 35 on macOS).
    private const int SharingViolation = unchecked((int)0x80070020);
    private const int LockViolation = unchecked((int)0x80070021);
    private const int LinuxWouldBlock = 11;
    private const int MacWouldBlock = 35;
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan LogInterval = TimeSpan.FromSeconds(10);

    private readonly FileStream _stream;

    private CacheFileLock(FileStream stream) => _stream = stream;

    /// <summary>Waits until the lock is free and takes it; logs every 10 s while waiting.</summary>
    public static async Task<CacheFileLock> AcquireAsync(string lockPath, string filePath, ILogger logger, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(lockPath)!);
        DateTime nextLog = DateTime.UtcNow;
        while (true)
        {
            try
            {
                return new CacheFileLock(new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, bufferSize: 1));
            }
            catch (IOException e) when (IsHeldElsewhere(e))
            {
                if (DateTime.UtcNow >= nextLog)
                {
                    HubLog.WaitingForLock(logger, filePath, lockPath);
                    nextLog = DateTime.UtcNow + LogInterval;
                }

                await Task.Delay(PollInterval, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    public void Dispose() => _stream.Dispose();

    private static bool IsHeldElsewhere(IOException e) => OperatingSystem.IsWindows()
        ? e.HResult is SharingViolation or LockViolation
        : e.HResult == (OperatingSystem.IsMacOS() || OperatingSystem.IsFreeBSD() ? MacWouldBlock : LinuxWouldBlock);
}
