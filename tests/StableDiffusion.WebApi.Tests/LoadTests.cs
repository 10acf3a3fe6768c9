using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using StableDiffusion.Memory;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.WebApi.Tests;

/// <summary>The process's memory is shared by every test: these run alone, so what they measure is theirs.</summary>
[CollectionDefinition(nameof(ProcessMemoryCollection), DisableParallelization = true)]
public sealed class ProcessMemoryCollection;

/// <summary>A burst of requests, and the memory a large one leaves behind, measured on the running service.</summary>
[Trait("Area", "WebApi")]
[Collection(nameof(ProcessMemoryCollection))]
public sealed class LoadTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task TwoHundredRequestsAtConcurrency16_AreAllAnsweredCorrectlyOrRefusedWith429_AndMemoryReturns()
    {
        Fixtures.Require();
        await using TestApp app = await TestApp.StartAsync(("ImageApi:MaxConcurrentGenerations", "2"), ("ImageApi:MaxQueueLength", "16"));
        object Body(int seed) => new { prompt = "a lighthouse", steps = 2, seed, width = 32, height = 32 };
        // The expected bytes per seed, and a warm-up, before memory is measured.
        var expected = new Dictionary<int, byte[]>();
        for (int seed = 0; seed < 4; seed++)
        {
            using HttpResponseMessage response = await app.Client.PostAsJsonAsync("/images", Body(seed), Ct);
            expected[seed] = await response.Content.ReadAsByteArrayAsync(Ct);
        }

        long before = SettledRss();
        var latencies = new System.Collections.Concurrent.ConcurrentBag<double>();
        var statuses = new System.Collections.Concurrent.ConcurrentBag<HttpStatusCode>();
        int next = -1;
        await Task.WhenAll(Enumerable.Range(0, 16).Select(_ => Task.Run(async () =>
        {
            for (int i = Interlocked.Increment(ref next); i < 200; i = Interlocked.Increment(ref next))
            {
                long start = Stopwatch.GetTimestamp();
                using HttpResponseMessage response = await app.Client.PostAsJsonAsync("/images", Body(i % 4), Ct);
                byte[] body = await response.Content.ReadAsByteArrayAsync(Ct);
                latencies.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                statuses.Add(response.StatusCode);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    Assert.Equal(expected[i % 4], body);
                }
                else
                {
                    Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
                    Assert.NotNull(response.Headers.RetryAfter);
                }
            }
        }, Ct)));
        long after = SettledRss();

        // With room for every client in the queue, nothing should be refused; a 429 would still be a correct answer.
        double[] sorted = [.. latencies.Order()];
        int ok = statuses.Count(s => s == HttpStatusCode.OK);
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"200 requests, concurrency 16: {ok} OK, {200 - ok} 429; p50 {sorted[99]:0} ms, p99 {sorted[197]:0} ms; RSS {before / 1e6:0} MB before, {after / 1e6:0} MB after.");
        Assert.Equal(200, statuses.Count);
        Assert.True(ok > 0);
        // A leak shows as growth (memory given back is fine); 64 MB is the floor because the arenas and the GC's heaps
        // settle within tens of megabytes of where they were, while a leak of a third of a megabyte per request exceeds it.
        Assert.True(after - before <= Math.Max(before * 0.10, 64e6), $"RSS {before / 1e6:0} MB before the burst, {after / 1e6:0} MB after.");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ALargeAllowedRequest_GivesItsMemoryBack_WhenTheArenasShrink(bool shrink)
    {
        Fixtures.Require();
        // The attention as exported, whose [heads, N, N] matrices are what the estimate counts and the arenas keep: with the
        // CPU's default MultiHeadAttention a 512x512 request's peak is too small to tell the arms apart.
        await using TestApp app = await TestApp.StartAsync(
            ("StableDiffusion:Pipeline:ShrinkMemoryArenas", shrink ? "true" : "false"), ("StableDiffusion:Pipeline:Session:FuseAttention", "false"));
        using (HttpResponseMessage warm = await app.Client.PostAsJsonAsync("/images", new { prompt = "a cat", steps = 1, width = 64, height = 64 }, Ct))
        {
            Assert.Equal(HttpStatusCode.OK, warm.StatusCode);
        }

        long before = SettledRss();
        using (HttpResponseMessage large = await app.Client.PostAsJsonAsync("/images", new { prompt = "a cat", steps = 1, width = 512, height = 512 }, Ct))
        {
            Assert.Equal(HttpStatusCode.OK, large.StatusCode);
        }

        long after = SettledRss();
        long estimate = GenerationMemoryEstimator.Estimate(512, 512).TotalBytes;
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"512x512, shrink {shrink}: RSS {before / 1e6:0} MB before, {after / 1e6:0} MB after; the estimate is {estimate / 1e6:0} MB.");
        if (shrink)
        {
            Assert.True(after - before < estimate / 4, $"RSS grew by {(after - before) / 1e6:0} MB and stayed.");
        }
        else
        {
            // Without shrinking, the arenas keep the request's peak: what the option exists to give back.
            Assert.True(after - before > estimate / 4, $"RSS grew by only {(after - before) / 1e6:0} MB.");
        }
    }

    private static long SettledRss()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var process = Process.GetCurrentProcess();
        return process.WorkingSet64;
    }
}
