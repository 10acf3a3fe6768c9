using StableDiffusion.SkiaSharp;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Cli.Tests;

/// <summary>What one in-process run of the CLI returned and printed.</summary>
internal sealed record CliRun(int ExitCode, string Output, string Error)
{
    public override string ToString() => $"exit {ExitCode}\nstdout:\n{Output}\nstderr:\n{Error}";
}

/// <summary>Runs <c>sdnet</c> in-process on the tiny fixture model, in a temporary folder of its own.</summary>
internal sealed class CliRunner : IDisposable
{
    public CliRunner()
    {
        Folder = Directory.CreateTempSubdirectory("sdnet-tests-").FullName;
    }

    public string Folder { get; }

    /// <summary>The settings every end-to-end run shares: the tiny model, 64x64, few steps, so a run takes a fraction of a second.</summary>
    public static string[] Tiny => ["--model", Fixtures.TinyModel, "-W", "64", "-H", "64", "--steps", "4"];

    public string PathOf(string name) => Path.Combine(Folder, name);

    public static Task<CliRun> RunAsync(string[] args) => RunCancellableAsync(args, new StringWriter(), TestContext.Current.CancellationToken);

    /// <summary>Runs with the given error writer (which may cancel the run as it reads the progress).</summary>
    public static async Task<CliRun> RunCancellableAsync(string[] args, StringWriter error, CancellationToken cancellationToken)
    {
        using var output = new StringWriter();
        int exitCode = await new CliCommand().RunAsync(args, output, error, cancellationToken);
        return new CliRun(exitCode, output.ToString(), error.ToString());
    }

    /// <summary>The PNG's pixels, row by row.</summary>
    public static byte[] Pixels(string path) => SkiaImageCodec.Decode(path).Pixels.ToArray();

    /// <summary>Files left in the folder, temporary ones included.</summary>
    public string[] Files() => [.. Directory.EnumerateFiles(Folder).Select(Path.GetFileName).Order(StringComparer.Ordinal)!];

    public void Dispose() => Directory.Delete(Folder, recursive: true);
}

/// <summary>A writer that runs an action the first time its text contains a marker (the CLI writes progress synchronously,
/// so the action runs at that exact point of the generation).</summary>
internal sealed class TriggerWriter(string marker, Action action) : StringWriter
{
    private bool _fired;

    public override void Write(char value)
    {
        base.Write(value);
        Check();
    }

    public override void Write(string? value)
    {
        base.Write(value);
        Check();
    }

    public override void Write(char[] buffer, int index, int count)
    {
        base.Write(buffer, index, count);
        Check();
    }

    private void Check()
    {
        if (!_fired && GetStringBuilder().ToString().Contains(marker, StringComparison.Ordinal))
        {
            _fired = true;
            action();
        }
    }
}
