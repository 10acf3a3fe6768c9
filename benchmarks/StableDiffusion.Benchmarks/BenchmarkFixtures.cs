namespace StableDiffusion.Benchmarks;

/// <summary>Where the benchmarks find the test fixtures: SD_FIXTURES, default ../shared/fixtures beside the repository.</summary>
internal static class BenchmarkFixtures
{
    public static string Folder =>
        Environment.GetEnvironmentVariable("SD_FIXTURES") ?? Path.Combine(FindRepositoryRoot(), "..", "shared", "fixtures");

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "StableDiffusion.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Run the benchmarks from the repository (no StableDiffusion.sln found above the binaries).");
    }
}
