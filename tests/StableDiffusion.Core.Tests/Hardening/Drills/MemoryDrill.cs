namespace StableDiffusion.Core.Tests.Hardening.Drills;

/// <summary>Memory after an iteration, measured after a full, compacting garbage collection.</summary>
/// <param name="Iteration">How many iterations had run.</param>
/// <param name="ManagedBytes">The managed heap (<see cref="GC.GetTotalMemory(bool)"/>).</param>
/// <param name="ResidentBytes">The process's resident set (<see cref="Environment.WorkingSet"/>: VmRSS on Linux), native memory included.</param>
public sealed record MemorySample(int Iteration, long ManagedBytes, long ResidentBytes);

/// <summary>The managed heap and resident set over many iterations (generations, or pipeline loads and disposals).</summary>
/// <param name="Samples">Every sample, in order.</param>
public sealed record MemorySeries(IReadOnlyList<MemorySample> Samples)
{
    /// <summary>The managed heap over the samples from <paramref name="fromIteration"/> on.</summary>
    /// <param name="fromIteration">The first iteration to include (to leave out a warm-up).</param>
    public SeriesSummary Managed(int fromIteration = 0) => Summary(fromIteration, s => s.ManagedBytes);

    /// <summary>The resident set over the samples from <paramref name="fromIteration"/> on.</summary>
    /// <param name="fromIteration">The first iteration to include (to leave out a warm-up).</param>
    public SeriesSummary Resident(int fromIteration = 0) => Summary(fromIteration, s => s.ResidentBytes);

    private SeriesSummary Summary(int fromIteration, Func<MemorySample, long> value) =>
        SeriesSummary.Of([.. Samples.Where(s => s.Iteration >= fromIteration).Select(s => ((double)s.Iteration, (double)value(s)))]);
}

/// <summary>Runs an iteration many times, sampling managed and native memory, to show that nothing accumulates.</summary>
public static class MemoryDrill
{
    /// <summary>Runs <paramref name="iteration"/> <paramref name="count"/> times, sampling before the first and after every <paramref name="sampleEvery"/>-th.</summary>
    /// <param name="count">The number of iterations.</param>
    /// <param name="sampleEvery">How often to sample.</param>
    /// <param name="iteration">One iteration, given its number (from 1); it must dispose what it creates.</param>
    /// <param name="cancellationToken">Cancels the drill.</param>
    public static async Task<MemorySeries> RunAsync(int count, int sampleEvery, Func<int, Task> iteration, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(iteration);
        var samples = new List<MemorySample> { Sample(0) };
        for (int i = 1; i <= count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            await iteration(i).ConfigureAwait(false);
            if (i % sampleEvery == 0 || i == count)
            {
                samples.Add(Sample(i));
            }
        }

        return new MemorySeries(samples);
    }

    /// <summary>
    /// Runs <paramref name="work"/> on a thread that ends with it. A disposed object that a finished method left in a stack
    /// slot of a thread that lives on stays reachable until the slot is reused: a whole pipeline's managed memory can come
    /// and go that way, which would blur the figures.
    /// </summary>
    /// <param name="work">The work.</param>
    public static Task OnOwnThread(Action work) =>
        Task.Factory.StartNew(work, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    /// <summary>Collects everything collectable (finalizers included), then measures.</summary>
    /// <param name="iteration">The iteration to record.</param>
    public static MemorySample Sample(int iteration)
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        return new MemorySample(iteration, GC.GetTotalMemory(forceFullCollection: false), Environment.WorkingSet);
    }
}
