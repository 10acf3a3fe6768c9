using Microsoft.Extensions.Logging;
using StableDiffusion.Pipelines;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.Loading;

/// <summary>
/// The UNet's session is created on the thread pool while the other components load on the caller's: a cancellation or a
/// failure among the others waits for it and releases it, and the model loads again afterwards.
/// </summary>
[Trait("Area", "Loading")]
public sealed class ParallelLoadingTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("tiny-sd-onnx")]
    [InlineData("tiny-sd")]
    public async Task CancellingAfterTheFirstComponent_StopsLoading_AndTheModelLoadsAgain(string model)
    {
        Fixtures.Require();
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        using var loggerFactory = LoggerFactory.Create(builder => builder.AddProvider(new CancelOnFirstLoad(cancel)));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            StableDiffusionPipeline.FromPretrainedAsync(Fixtures.PathOf(model), new StableDiffusionPipelineOptions { LoggerFactory = loggerFactory }, cancel.Token));

        using StableDiffusionPipeline pipe = await StableDiffusionPipeline.FromPretrainedAsync(Fixtures.PathOf(model), cancellationToken: Ct);
        using GenerationResult result = await pipe.GenerateAsync(new TextToImageRequest("a lighthouse") { Seed = 1, NumInferenceSteps = 2, Height = 64, Width = 64 }, Ct);
        Assert.Single(result.Images);
    }

    [Fact]
    public async Task ConfigureSessionOptions_IsNeverCalledForTwoSessionsAtOnce()
    {
        Fixtures.Require();
        int inside = 0, most = 0;
        var seen = new System.Collections.Concurrent.ConcurrentBag<string>();
        var options = new StableDiffusionPipelineOptions
        {
            // Long enough that the UNet's session and another one would meet in the hook if it were not serialised.
            ConfigureSessionOptions = (component, _) =>
            {
                int now = Interlocked.Increment(ref inside);
                InterlockedMax(ref most, now);
                seen.Add(component);
                Thread.Sleep(100);
                Interlocked.Decrement(ref inside);
            },
        };

        using StableDiffusionPipeline pipe = await StableDiffusionPipeline.FromPretrainedAsync(Fixtures.TinyModel, options, Ct);

        Assert.Equal(1, most);
        Assert.Equal(["safety_checker", "text_encoder", "unet", "vae_decoder"], seen.Order(StringComparer.Ordinal));
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current = Volatile.Read(ref target);
        while (value > current && Interlocked.CompareExchange(ref target, value, current) is int seen && seen != current)
        {
            current = seen;
        }
    }

    /// <summary>Cancels when the first component (whichever thread loaded it) says it has loaded.</summary>
    private sealed class CancelOnFirstLoad(CancellationTokenSource cancel) : ILoggerProvider, ILogger
    {
        public ILogger CreateLogger(string categoryName) => this;

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (formatter(state, exception).StartsWith("Component ", StringComparison.Ordinal))
            {
                cancel.Cancel();
            }
        }

        public void Dispose()
        {
        }
    }
}
