using Microsoft.Extensions.Logging;

namespace StableDiffusion.Benchmarks;

/// <summary>
/// The pipeline's logger factory in the benchmark: from each "Component {Component} loaded in {Milliseconds} ms" message
/// (read from the message's structured values, not its text) the component's load time, and a device memory reading
/// where there is a probe. The UNet loads beside the other components, so messages come from two threads.
/// </summary>
internal sealed class ComponentLoadLog(DeviceMemoryByStage? memory) : ILoggerFactory, ILogger
{
    private const string LoadedFormat = "Component {Component} loaded";
    private readonly Lock _lock = new();

    /// <summary>Each component's load time in milliseconds, in the order they finished.</summary>
    public List<KeyValuePair<string, double>> Milliseconds { get; } = [];

    ILogger ILoggerFactory.CreateLogger(string categoryName) => this;

    void ILoggerFactory.AddProvider(ILoggerProvider provider)
    {
    }

    void IDisposable.Dispose()
    {
    }

    bool ILogger.IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

    IDisposable? ILogger.BeginScope<TState>(TState state) => null;

    void ILogger.Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (state is IReadOnlyList<KeyValuePair<string, object?>> values
            && values.Any(static v => v is { Key: "{OriginalFormat}", Value: string format } && format.StartsWith(LoadedFormat, StringComparison.Ordinal))
            && values.FirstOrDefault(static v => v.Key == "Component").Value is string component
            && values.FirstOrDefault(static v => v.Key == "Milliseconds").Value is double milliseconds)
        {
            lock (_lock)
            {
                Milliseconds.Add(new(component, milliseconds));
            }

            memory?.Read($"{component} loaded");
        }
    }
}
