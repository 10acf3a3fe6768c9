using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace StableDiffusion.Cli;

/// <summary>
/// Writes the SDK's log messages to the tool's console, so they appear above a live progress display instead of
/// breaking it, and land in the same stream as the tool's other messages.
/// </summary>
internal sealed class ConsoleLoggerProvider(IAnsiConsole console, LogLevel minimumLevel) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new ConsoleLogger(console, minimumLevel);

    public void Dispose()
    {
    }

    private sealed class ConsoleLogger(IAnsiConsole console, LogLevel minimumLevel) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= minimumLevel && logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
            {
                return;
            }

            (string label, string colour) = logLevel switch
            {
                LogLevel.Critical or LogLevel.Error => ("error", "red"),
                LogLevel.Warning => ("warning", "yellow"),
                _ => ("info", "grey"),
            };
            string message = formatter(state, exception) + (exception is null ? string.Empty : $" ({exception.Message})");
            console.MarkupLine($"[{colour}]{label}:[/] {Markup.Escape(message)}");
        }
    }
}
