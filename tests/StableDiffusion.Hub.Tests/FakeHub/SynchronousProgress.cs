namespace StableDiffusion.Hub.Tests.FakeHub;

/// <summary>Reports on the calling thread, one report at a time (<see cref="Progress{T}"/> would post to the thread pool).</summary>
public sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
{
    private readonly Lock _gate = new();

    public void Report(T value)
    {
        lock (_gate)
        {
            report(value);
        }
    }
}
