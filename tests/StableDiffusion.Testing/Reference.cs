using System.Text.Json;
using Xunit;

namespace StableDiffusion.Testing;

/// <summary>
/// The references the parity tests check: folders of <c>reference.json</c> + <c>reference.npz</c> (what diffusers produced
/// on the tiny models). By default the published one (<c>$SD_FIXTURES/reference</c>) and the repository's own
/// (<c>tests/reference</c>, written by <c>eng/reference/generate.py</c>); <c>SD_REFERENCE</c> names others instead (one
/// folder, or several separated by the platform's path separator). Data-driven tests get one row per case of every
/// reference, named <c>label:case</c>.
/// </summary>
public static class Reference
{
    /// <summary>The environment variable naming the reference folders to check instead of the default ones.</summary>
    public const string Variable = "SD_REFERENCE";

    /// <summary>The label of the published reference in the fixtures folder.</summary>
    public const string FixturesLabel = "fixtures";

    /// <summary>The label of the repository's own reference (<c>tests/reference</c>).</summary>
    public const string RepositoryLabel = "repo";

    private static readonly Lazy<IReadOnlyList<ReferenceSet>> LazySets = new(FindSets);
    private static readonly Lazy<ReferenceSet> LazyFixtures = new(() => new ReferenceSet(FixturesLabel, Fixtures.PathOf("reference")));

    /// <summary>Every reference the data-driven parity tests check.</summary>
    public static IReadOnlyList<ReferenceSet> Sets => LazySets.Value;

    /// <summary>
    /// The published reference of the fixtures folder, for tests that rely on its particular cases and arrays (not
    /// data-driven ones, which take every reference of <see cref="Sets"/>).
    /// </summary>
    public static ReferenceSet Published => LazyFixtures.Value;

    /// <summary>Whether every reference to check exists.</summary>
    public static bool IsAvailable => Sets.All(s => s.IsAvailable);

    /// <summary>Why reference tests are not running, or null when every reference is there.</summary>
    public static string? MissingReason => Sets.FirstOrDefault(s => !s.IsAvailable) is { } missing
        ? $"Reference outputs not found in '{missing.Folder}'. Set {Variable} (or {Fixtures.Variable}) to the folder holding reference.json and reference.npz."
        : null;

    /// <summary>
    /// Theory rows, one per case of <paramref name="list"/> (<c>cases</c> by default) of <paramref name="section"/> in
    /// every reference, named <c>label:name</c> (<c>label:#index</c> for cases without a name). A reference without the
    /// section contributes no row; without any reference the single row is skipped (or fails when fixtures are required).
    /// </summary>
    /// <param name="section">The top-level key, such as <c>pipeline</c>.</param>
    /// <param name="list">The list of cases inside the section.</param>
    public static IEnumerable<TheoryDataRow<string>> CaseNames(string section, string list = "cases")
    {
        if (!IsAvailable)
        {
            return [new TheoryDataRow<string>("(reference missing)") { Skip = Fixtures.IsRequired ? null : MissingReason }];
        }

        var rows = new List<TheoryDataRow<string>>();
        foreach (ReferenceSet set in Sets)
        {
            int index = 0;
            foreach (JsonElement c in set.CaseList(section, list))
            {
                rows.Add(new TheoryDataRow<string>($"{set.Label}:{CaseKey(c, index++)}"));
            }
        }

        return rows.Count > 0 ? rows : [new TheoryDataRow<string>($"(no {section}.{list} in any reference)") { Skip = $"No reference has {section}.{list}." }];
    }

    /// <summary>The reference and the case a row of <see cref="CaseNames"/> names.</summary>
    /// <param name="section">The top-level key.</param>
    /// <param name="id">The row, <c>label:name</c>.</param>
    /// <param name="list">The list of cases inside the section.</param>
    public static (ReferenceSet Set, JsonElement Case) Case(string section, string id, string list = "cases")
    {
        Require();
        int colon = id.IndexOf(':', StringComparison.Ordinal);
        string label = colon < 0 ? throw new ArgumentException($"'{id}' is not a reference case row (label:name).", nameof(id)) : id[..colon];
        string key = id[(colon + 1)..];
        ReferenceSet set = Sets.FirstOrDefault(s => s.Label == label) ?? throw new KeyNotFoundException($"No reference labelled '{label}'.");
        int index = 0;
        foreach (JsonElement c in set.CaseList(section, list))
        {
            if (CaseKey(c, index++) == key)
            {
                return (set, c);
            }
        }

        throw new KeyNotFoundException($"Reference '{label}' ({set.Folder}) has no case '{key}' in {section}.{list}.");
    }

    /// <summary>Skips the calling test when a reference is missing (or fails it when fixtures are required).</summary>
    public static void Require()
    {
        foreach (ReferenceSet set in Sets)
        {
            set.Require();
        }
    }

    /// <summary>
    /// Fails, naming the field, when <paramref name="element"/> has a field the calling test does not understand: a new
    /// kind of case must never pass by being half read.
    /// </summary>
    /// <param name="element">A case or section object.</param>
    /// <param name="where">What it is, for the message (such as <c>repo:heun_2steps</c>).</param>
    /// <param name="known">The fields the test reads or knows to be informational.</param>
    public static void RequireKnownFields(JsonElement element, string where, params IEnumerable<string> known)
    {
        var understood = new HashSet<string>(known, StringComparer.Ordinal);
        foreach (JsonProperty property in element.EnumerateObject())
        {
            Assert.True(understood.Contains(property.Name),
                $"{where}: the reference has a field \"{property.Name}\" this test does not understand (it knows {string.Join(", ", understood.Order(StringComparer.Ordinal))}). Teach the test what it means.");
        }
    }

    private static string CaseKey(JsonElement c, int index) =>
        c.ValueKind == JsonValueKind.Object && c.TryGetProperty("name", out JsonElement name) && name.ValueKind == JsonValueKind.String
            ? name.GetString()!
            : $"#{index}";

    private static IReadOnlyList<ReferenceSet> FindSets()
    {
        string? fromEnvironment = Environment.GetEnvironmentVariable(Variable);
        if (string.IsNullOrWhiteSpace(fromEnvironment))
        {
            return [Published, new ReferenceSet(RepositoryLabel, Path.Combine(Fixtures.RepositoryRoot, "tests", "reference"))];
        }

        var sets = new List<ReferenceSet>();
        foreach (string folder in fromEnvironment.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            string label = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder)));
            string unique = label;
            for (int n = 2; sets.Any(s => s.Label == unique); n++)
            {
                unique = $"{label}{n}";
            }

            sets.Add(new ReferenceSet(unique, folder));
        }

        return sets;
    }
}
