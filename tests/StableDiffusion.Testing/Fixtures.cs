using Xunit;

namespace StableDiffusion.Testing;

/// <summary>
/// Locates the shared test fixtures (../shared/fixtures/README.md): <c>SD_FIXTURES</c> names the folder, defaulting to
/// <c>../shared/fixtures</c> from the repository root. Tests that need it skip with a message naming the variable when it
/// is missing, unless <c>SD_REQUIRE_FIXTURES=1</c> (set by CI), where a missing folder fails them instead.
/// </summary>
public static class Fixtures
{
    /// <summary>The environment variable naming the fixtures folder.</summary>
    public const string Variable = "SD_FIXTURES";

    /// <summary>The environment variable that turns a missing fixtures folder into a failure (CI sets it).</summary>
    public const string RequireVariable = "SD_REQUIRE_FIXTURES";

    private static readonly Lazy<string?> LazyRepositoryRoot = new(FindRepositoryRoot);

    /// <summary>The repository root (the folder holding StableDiffusion.sln).</summary>
    /// <exception cref="InvalidOperationException">The tests run from outside the repository (a published test executable).</exception>
    public static string RepositoryRoot => LazyRepositoryRoot.Value
        ?? throw new InvalidOperationException($"No StableDiffusion.sln above '{AppContext.BaseDirectory}': run the tests from the repository.");

    // Outside the repository (a published test executable on the GPU machine) the default folder is unknown: only
    // SD_FIXTURES can name it, and without it the fixture tests skip like anywhere else the fixtures are missing.
    private static readonly Lazy<string> LazyRoot = new(() =>
    {
        string? fromEnvironment = Environment.GetEnvironmentVariable(Variable);
        return Path.GetFullPath(string.IsNullOrWhiteSpace(fromEnvironment)
            ? Path.Combine(LazyRepositoryRoot.Value ?? AppContext.BaseDirectory, "..", "shared", "fixtures")
            : fromEnvironment);
    });

    /// <summary>The fixtures folder, whether or not it exists.</summary>
    public static string Root => LazyRoot.Value;

    /// <summary>Whether the fixtures folder exists.</summary>
    public static bool IsAvailable => Directory.Exists(Root) && File.Exists(Path.Combine(Root, "README.md"));

    /// <summary>Whether a missing fixtures folder must fail tests rather than skip them.</summary>
    public static bool IsRequired => Environment.GetEnvironmentVariable(RequireVariable) is "1" or "true" or "TRUE" or "True";

    /// <summary>Why fixture tests are not running, or null when the fixtures are there.</summary>
    public static string? MissingReason => IsAvailable
        ? null
        : $"Test fixtures not found at '{Root}'. Set {Variable} to the folder holding fixtures/README.md (default: ../shared/fixtures from the repository root).";

    /// <summary>The tiny SD 1.5 model in the diffusers ONNX layout.</summary>
    public static string TinyModel => PathOf("tiny-sd-onnx");

    /// <summary>The same tiny model with other export conventions (int64 ids and timestep, external data, latent_parameters).</summary>
    public static string TinyVariantsModel => PathOf("tiny-sd-onnx-variants");

    /// <summary>The tiny 9-channel inpainting model.</summary>
    public static string TinyInpaintModel => PathOf("tiny-sd-inpaint-onnx");

    /// <summary>A path inside the fixtures folder. Call <see cref="Require"/> first in tests that read it.</summary>
    /// <param name="relative">A path relative to the fixtures folder.</param>
    public static string PathOf(string relative) => Path.Combine(Root, relative);

    /// <summary>Skips the calling test when the fixtures are missing (or fails it when they are required).</summary>
    public static void Require()
    {
        string? reason = MissingReason;
        if (reason is null)
        {
            return;
        }

        if (IsRequired)
        {
            Assert.Fail($"{reason} ({RequireVariable} is set, so missing fixtures fail the run.)");
        }

        Assert.Skip(reason);
    }

    private static string? FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "StableDiffusion.sln")))
            {
                return dir.FullName;
            }
        }

        return null;
    }
}
