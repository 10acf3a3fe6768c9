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
        int inside = 0;
        bool overlapped = false;
        var seen = new System.Collections.Concurrent.ConcurrentBag<string>();
        var options = new StableDiffusionPipelineOptions
        {
            // Each call waits a while for another to come in, as the UNet's would beside the others' if the hook were not
            // serialised; serialised, each call waits out the whole while.
            ConfigureSessionOptions = (component, _) =>
            {
                Interlocked.Increment(ref inside);
                seen.Add(component);
                if (SpinWait.SpinUntil(() => Volatile.Read(ref inside) > 1, TimeSpan.FromMilliseconds(400)))
                {
                    Volatile.Write(ref overlapped, true);
                }

                Interlocked.Decrement(ref inside);
            },
        };

        using StableDiffusionPipeline pipe = await StableDiffusionPipeline.FromPretrainedAsync(Fixtures.TinyModel, options, Ct);

        Assert.False(overlapped, "The hook ran for two sessions at once.");
        Assert.Equal(["safety_checker", "text_encoder", "unet", "vae_decoder"], seen.Order(StringComparer.Ordinal));
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
