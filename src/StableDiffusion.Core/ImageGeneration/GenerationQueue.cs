using System.Diagnostics;
using StableDiffusion.Telemetry;

namespace StableDiffusion.ImageGeneration;

/// <summary>
/// Admits a fixed number of generations at once and lets a bounded number wait: a service's back-pressure. A caller
/// that finds the queue full is told at once (<see cref="TryEnterAsync"/> gives null: answer 429), with an estimate of
/// when to retry; the time each admitted caller waited is recorded as <see cref="StableDiffusionTelemetry.QueueWaitInstrument"/>.
/// </summary>
public sealed class GenerationQueue : IDisposable
{
    private readonly SemaphoreSlim _slots;
    private readonly int _maxConcurrent;
    private readonly int _maxWaiting;
    private int _admitted;
    private long _averageTicks;

    /// <summary>Creates the queue.</summary>
    /// <param name="maxConcurrentGenerations">Generations that run at once (1 keeps a CPU or one GPU from being oversubscribed).</param>
    /// <param name="maxWaiting">Callers that may wait for a slot; more are turned away.</param>
    public GenerationQueue(int maxConcurrentGenerations, int maxWaiting)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxConcurrentGenerations, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(maxWaiting);
        _maxConcurrent = maxConcurrentGenerations;
        _maxWaiting = maxWaiting;
        _slots = new SemaphoreSlim(maxConcurrentGenerations, maxConcurrentGenerations);
    }

    /// <summary>Callers running or waiting.</summary>
    public int Admitted => Volatile.Read(ref _admitted);

    /// <summary>
    /// How long a caller turned away now should wait before retrying: the recent average time a slot is held, times the
    /// callers ahead per slot; at least one second.
    /// </summary>
    public TimeSpan RetryAfter
    {
        get
        {
            double average = Stopwatch.GetElapsedTime(0, Volatile.Read(ref _averageTicks)).TotalSeconds;
            double seconds = average * Math.Max(1, Admitted - _maxConcurrent + 1) / _maxConcurrent;
            return TimeSpan.FromSeconds(Math.Max(1, Math.Ceiling(seconds)));
        }
    }

    /// <summary>Waits for a slot, or returns null at once when the queue is full. Dispose the slot when the generation ends.</summary>
    /// <param name="cancellationToken">Stops waiting (a cancelled caller leaves the queue).</param>
    public async ValueTask<IDisposable?> TryEnterAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Increment(ref _admitted) > _maxConcurrent + _maxWaiting)
        {
            Interlocked.Decrement(ref _admitted);
            return null;
        }

        long start = Stopwatch.GetTimestamp();
        try
        {
            await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            Interlocked.Decrement(ref _admitted);
            throw;
        }

        if (GenerationTelemetry.QueueWait.Enabled)
        {
            GenerationTelemetry.QueueWait.Record(Stopwatch.GetElapsedTime(start).TotalSeconds);
        }

        return new Slot(this);
    }

    /// <summary>Releases the semaphore.</summary>
    public void Dispose() => _slots.Dispose();

    private void Leave(long heldTicks)
    {
        // An exponential moving average of the time a slot is held, for RetryAfter.
        long previous = Volatile.Read(ref _averageTicks);
        Volatile.Write(ref _averageTicks, previous == 0 ? heldTicks : (previous * 7 + heldTicks) / 8);
        _slots.Release();
        Interlocked.Decrement(ref _admitted);
    }

    private sealed class Slot(GenerationQueue queue) : IDisposable
    {
        private readonly long _start = Stopwatch.GetTimestamp();
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                queue.Leave(Stopwatch.GetTimestamp() - _start);
            }
        }
    }
}
