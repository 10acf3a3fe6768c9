using System.Diagnostics;
using StableDiffusion.Pipelines;
using StableDiffusion.Schedulers;

namespace StableDiffusion.Core.Tests.Hardening.Drills;

/// <summary>One concurrency round: the same requests run one by one, then all at once on one pipeline.</summary>
/// <param name="Concurrency">How many generations ran at once.</param>
/// <param name="Mismatches">How many concurrent results were not byte-identical to their sequential twin.</param>
/// <param name="Sequential">The time of the one-by-one runs.</param>
/// <param name="Concurrent">The time of the concurrent runs.</param>
public sealed record ConcurrencyOutcome(int Concurrency, int Mismatches, TimeSpan Sequential, TimeSpan Concurrent);

/// <summary>
/// Runs N generations at once on one pipeline and checks each against the same request run alone: a pipeline shared by
/// threads must give every caller exactly the image it would have got by itself, and never deadlock.
/// </summary>
public static class ConcurrencyDrill
{
    /// <summary>
    /// <paramref name="count"/> different requests: seeds, prompts, guidance on and off, and an ancestral (stochastic)
    /// scheduler on every third, so that any state shared between calls would show in the images.
    /// </summary>
    /// <param name="pipeline">The pipeline whose scheduler configuration the ancestral scheduler starts from.</param>
    /// <param name="count">The number of requests.</param>
    /// <param name="steps">Denoising steps per request.</param>
    public static IReadOnlyList<TextToImageRequest> Requests(DiffusionPipeline pipeline, int count, int steps)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        IScheduler ancestral = SchedulerFactory.Create("Euler a", pipeline.Scheduler.Config);
        return [.. Enumerable.Range(0, count).Select(i => new TextToImageRequest($"a watercolour of a lighthouse, variation {i}")
        {
            Seed = (ulong)(1000 + i),
            NumInferenceSteps = steps,
            GuidanceScale = i % 2 == 0 ? 7.5f : 1f,
            Scheduler = i % 3 == 2 ? ancestral : null,
            Height = 64,
            Width = 64,
        })];
    }

    /// <summary>Runs the requests one by one, then all at once, and compares the results byte for byte.</summary>
    /// <param name="pipeline">The pipeline.</param>
    /// <param name="requests">The requests (their count is the concurrency).</param>
    /// <param name="timeout">How long the concurrent round may take before it counts as a deadlock (<see cref="TimeoutException"/>).</param>
    /// <param name="cancellationToken">Cancels the drill.</param>
    public static async Task<ConcurrencyOutcome> RunAsync(StableDiffusionPipeline pipeline, IReadOnlyList<TextToImageRequest> requests, TimeSpan timeout,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(requests);
        var sequential = new byte[requests.Count][];
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < requests.Count; i++)
        {
            using GenerationResult result = await pipeline.GenerateAsync(requests[i], cancellationToken).ConfigureAwait(false);
            sequential[i] = GenerationBytes.Of(result);
        }

        TimeSpan sequentialTime = Stopwatch.GetElapsedTime(start);
        start = Stopwatch.GetTimestamp();
        GenerationResult[] results = await Task.WhenAll(requests.Select(r => pipeline.GenerateAsync(r, cancellationToken)))
            .WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        TimeSpan concurrentTime = Stopwatch.GetElapsedTime(start);
        int mismatches = 0;
        for (int i = 0; i < results.Length; i++)
        {
            using GenerationResult result = results[i];
            mismatches += GenerationBytes.Of(result).AsSpan().SequenceEqual(sequential[i]) ? 0 : 1;
        }

        return new ConcurrencyOutcome(requests.Count, mismatches, sequentialTime, concurrentTime);
    }
}
