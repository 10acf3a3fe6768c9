using System.Text.Json;
using System.Text.Json.Nodes;
using Xunit;

namespace StableDiffusion.Testing;

/// <summary>
/// What diffusers produced on the tiny model (fixtures/reference): <c>reference.json</c> describes the cases and
/// <c>reference.npz</c> holds their arrays. <c>SD_REFERENCE</c> names another folder of the same schema; it defaults to
/// <c>$SD_FIXTURES/reference</c>.
/// </summary>
public static class Reference
{
    /// <summary>The environment variable naming the reference folder.</summary>
    public const string Variable = "SD_REFERENCE";

    private static readonly Lazy<JsonDocument> LazyDocument = new(() => JsonDocument.Parse(QuoteNamedLiterals(File.ReadAllText(Path.Combine(Folder, "reference.json")))));
    private static readonly Lazy<IReadOnlyDictionary<string, NpyArray>> LazyArrays = new(() => NpyArray.ReadNpz(Path.Combine(Folder, "reference.npz")));

    /// <summary>The reference folder, whether or not it exists.</summary>
    public static string Folder
    {
        get
        {
            string? fromEnvironment = Environment.GetEnvironmentVariable(Variable);
            return Path.GetFullPath(string.IsNullOrWhiteSpace(fromEnvironment) ? Fixtures.PathOf("reference") : fromEnvironment);
        }
    }

    /// <summary>Whether reference.json and reference.npz exist.</summary>
    public static bool IsAvailable => File.Exists(Path.Combine(Folder, "reference.json")) && File.Exists(Path.Combine(Folder, "reference.npz"));

    /// <summary>The root of reference.json.</summary>
    public static JsonElement Root
    {
        get
        {
            Require();
            return LazyDocument.Value.RootElement;
        }
    }

    /// <summary>An array of reference.npz by the name reference.json gives it.</summary>
    /// <param name="name">Such as <c>sched/x0</c> or <c>pipe/astronaut_pndm/torch_images</c>.</param>
    public static NpyArray Array(string name)
    {
        Require();
        return LazyArrays.Value.TryGetValue(name, out NpyArray? array)
            ? array
            : throw new KeyNotFoundException($"reference.npz has no array '{name}'.");
    }

    /// <summary>Whether reference.npz holds an array of that name.</summary>
    /// <param name="name">The array name.</param>
    public static bool HasArray(string name) => LazyArrays.Value.ContainsKey(name);

    /// <summary>Resolves a model path that reference.json gives relative to the reference folder (such as <c>../tiny-sd-onnx</c>).</summary>
    /// <param name="relative">The relative path.</param>
    public static string ResolvePath(string relative) => Path.GetFullPath(Path.Combine(Folder, relative));

    /// <summary>The cases of a section such as <c>schedulers</c> (its <c>cases</c> array).</summary>
    /// <param name="section">The top-level key.</param>
    public static IEnumerable<JsonElement> Cases(string section) => Root.GetProperty(section).GetProperty("cases").EnumerateArray();

    /// <summary>One case of a section, by its <c>name</c> (or its <c>text</c> for tokenizer cases, by index).</summary>
    /// <param name="section">The top-level key.</param>
    /// <param name="name">The case name.</param>
    public static JsonElement Case(string section, string name) =>
        Cases(section).FirstOrDefault(c => c.TryGetProperty("name", out JsonElement n) && n.GetString() == name) is { ValueKind: JsonValueKind.Object } found
            ? found
            : throw new KeyNotFoundException($"reference.json has no case '{name}' in section '{section}'.");

    /// <summary>
    /// The configuration a scheduler entry of the reference was built from, as JSON: diffusers'
    /// <c>cls.from_config({**base_config, **overrides})</c> with <c>_class_name</c> naming <c>cls</c>.
    /// </summary>
    /// <param name="entry">A case of <c>schedulers.cases</c> or a value of <c>schedulers.by_key</c> (it has <c>class</c> and <c>overrides</c>).</param>
    public static string SchedulerConfigOf(JsonElement entry)
    {
        var config = (JsonObject)JsonNode.Parse(Root.GetProperty("schedulers").GetProperty("base_config").GetRawText())!;
        foreach (JsonProperty p in entry.GetProperty("overrides").EnumerateObject())
        {
            config[p.Name] = JsonNode.Parse(p.Value.GetRawText());
        }

        config["_class_name"] = entry.GetProperty("class").GetString();
        return config.ToJsonString();
    }

    /// <summary>
    /// Theory rows, one per case name of <paramref name="section"/>. Without the reference the single row is skipped
    /// (or, when fixtures are required, fails).
    /// </summary>
    /// <param name="section">The top-level key.</param>
    public static IEnumerable<TheoryDataRow<string>> CaseNames(string section)
    {
        if (!IsAvailable)
        {
            return [MissingRow()];
        }

        return Cases(section).Select(c => new TheoryDataRow<string>(c.GetProperty("name").GetString()!)).ToList();
    }

    /// <summary>Theory rows, one per case index of <paramref name="section"/>, for sections whose cases have no names.</summary>
    /// <param name="section">The top-level key.</param>
    public static IEnumerable<TheoryDataRow<int>> CaseIndexes(string section)
    {
        if (!IsAvailable)
        {
            return [new TheoryDataRow<int>(-1) { Skip = Fixtures.IsRequired ? null : MissingReason }];
        }

        return Enumerable.Range(0, Cases(section).Count()).Select(i => new TheoryDataRow<int>(i)).ToList();
    }

    /// <summary>Why reference tests are not running, or null when the reference is there.</summary>
    public static string? MissingReason => IsAvailable
        ? null
        : $"Reference outputs not found in '{Folder}'. Set {Variable} (or {Fixtures.Variable}) to the folder holding reference.json and reference.npz.";

    /// <summary>Skips the calling test when the reference is missing (or fails it when fixtures are required).</summary>
    public static void Require()
    {
        if (IsAvailable)
        {
            return;
        }

        if (Fixtures.IsRequired)
        {
            Assert.Fail($"{MissingReason} ({Fixtures.RequireVariable} is set, so missing fixtures fail the run.)");
        }

        Assert.Skip(MissingReason!);
    }

    // Python's json writes -Infinity / NaN as bare tokens; quote them so System.Text.Json reads the file.
    private static string QuoteNamedLiterals(string json) =>
        System.Text.RegularExpressions.Regex.Replace(json, @"(?<=[:\[,]\s*)(-?Infinity|NaN)(?=\s*[,\]}])", "\"$1\"");

    private static TheoryDataRow<string> MissingRow() =>
        new("(reference missing)") { Skip = Fixtures.IsRequired ? null : MissingReason };
}
