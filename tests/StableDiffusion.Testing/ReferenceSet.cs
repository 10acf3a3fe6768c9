using System.Text.Json;
using System.Text.Json.Nodes;
using Xunit;

namespace StableDiffusion.Testing;

/// <summary>
/// One reference folder: <c>reference.json</c> describes the cases and <c>reference.npz</c> holds their arrays, in the
/// schema of the published reference (../shared/fixtures/reference, written by <c>eng/reference/generate.py</c>).
/// </summary>
public sealed class ReferenceSet
{
    private readonly Lazy<JsonDocument> _document;
    private readonly Lazy<IReadOnlyDictionary<string, NpyArray>> _arrays;

    /// <summary>A reference in <paramref name="folder"/>, called <paramref name="label"/> in test names.</summary>
    /// <param name="label">A short name for test rows, such as <c>fixtures</c>.</param>
    /// <param name="folder">The folder holding reference.json and reference.npz.</param>
    public ReferenceSet(string label, string folder)
    {
        Label = label;
        Folder = Path.GetFullPath(folder);
        _document = new(() => JsonDocument.Parse(QuoteNamedLiterals(File.ReadAllText(Path.Combine(Folder, "reference.json")))));
        _arrays = new(() => NpyArray.ReadNpz(Path.Combine(Folder, "reference.npz")));
    }

    /// <summary>The short name of the reference in test rows.</summary>
    public string Label { get; }

    /// <summary>The reference folder, whether or not it exists.</summary>
    public string Folder { get; }

    /// <summary>Whether reference.json and reference.npz exist.</summary>
    public bool IsAvailable => File.Exists(Path.Combine(Folder, "reference.json")) && File.Exists(Path.Combine(Folder, "reference.npz"));

    /// <summary>The root of reference.json.</summary>
    public JsonElement Root
    {
        get
        {
            Require();
            return _document.Value.RootElement;
        }
    }

    /// <summary>An array of reference.npz by the name reference.json gives it.</summary>
    /// <param name="name">Such as <c>sched/x0</c> or <c>pipe/astronaut_pndm/torch_images</c>.</param>
    public NpyArray Array(string name)
    {
        Require();
        return _arrays.Value.TryGetValue(name, out NpyArray? array)
            ? array
            : throw new KeyNotFoundException($"{Path.Combine(Folder, "reference.npz")} has no array '{name}'.");
    }

    /// <summary>Whether reference.npz holds an array of that name.</summary>
    /// <param name="name">The array name.</param>
    public bool HasArray(string name) => _arrays.Value.ContainsKey(name);

    /// <summary>
    /// Resolves a model path that reference.json gives relative to the reference folder (such as <c>../tiny-sd-onnx</c>).
    /// The paths are written for a reference inside the fixtures folder: for one elsewhere (the repository's own), a path
    /// that does not exist beside it is taken relative to <c>$SD_FIXTURES/reference</c>.
    /// </summary>
    /// <param name="relative">The relative path.</param>
    public string ResolvePath(string relative)
    {
        string beside = Path.GetFullPath(Path.Combine(Folder, relative));
        return Directory.Exists(beside) || File.Exists(beside) ? beside : Path.GetFullPath(Path.Combine(Fixtures.PathOf("reference"), relative));
    }

    /// <summary>The cases of <c>section.list</c>, or none when this reference lacks them.</summary>
    /// <param name="section">The top-level key.</param>
    /// <param name="list">The list inside the section (<c>cases</c>, <c>errors</c>, ...).</param>
    public IEnumerable<JsonElement> CaseList(string section, string list = "cases") =>
        Root.TryGetProperty(section, out JsonElement s) && s.ValueKind == JsonValueKind.Object && s.TryGetProperty(list, out JsonElement cases) && cases.ValueKind == JsonValueKind.Array
            ? cases.EnumerateArray()
            : [];

    /// <summary>One case of a section by its <c>name</c>.</summary>
    /// <param name="section">The top-level key.</param>
    /// <param name="name">The case name.</param>
    public JsonElement Case(string section, string name) =>
        CaseList(section).FirstOrDefault(c => c.TryGetProperty("name", out JsonElement n) && n.GetString() == name) is { ValueKind: JsonValueKind.Object } found
            ? found
            : throw new KeyNotFoundException($"Reference '{Label}' has no case '{name}' in section '{section}'.");

    /// <summary>
    /// The configuration a scheduler entry of the reference was built from, as JSON: diffusers'
    /// <c>cls.from_config({**base_config, **overrides})</c> with <c>_class_name</c> naming <c>cls</c>.
    /// </summary>
    /// <param name="entry">A case of <c>schedulers.cases</c> or a value of <c>schedulers.by_key</c> (it has <c>class</c> and <c>overrides</c>).</param>
    public string SchedulerConfigOf(JsonElement entry)
    {
        var config = (JsonObject)JsonNode.Parse(Root.GetProperty("schedulers").GetProperty("base_config").GetRawText())!;
        foreach (JsonProperty p in entry.GetProperty("overrides").EnumerateObject())
        {
            config[p.Name] = JsonNode.Parse(p.Value.GetRawText());
        }

        config["_class_name"] = entry.GetProperty("class").GetString();
        return config.ToJsonString();
    }

    /// <inheritdoc />
    public override string ToString() => $"{Label} ({Folder})";

    /// <summary>Skips the calling test when this reference is missing (or fails it when fixtures are required).</summary>
    public void Require()
    {
        if (IsAvailable)
        {
            return;
        }

        string reason = $"Reference '{Label}' not found: no reference.json and reference.npz in '{Folder}'. Set {Reference.Variable} (or {Fixtures.Variable}) to the folder holding them.";
        if (Fixtures.IsRequired)
        {
            Assert.Fail($"{reason} ({Fixtures.RequireVariable} is set, so missing fixtures fail the run.)");
        }

        Assert.Skip(reason);
    }

    // Python's json writes -Infinity / NaN as bare tokens; quote them so System.Text.Json reads the file.
    private static string QuoteNamedLiterals(string json) =>
        System.Text.RegularExpressions.Regex.Replace(json, @"(?<=[:\[,]\s*)(-?Infinity|NaN)(?=\s*[,\]}])", "\"$1\"");
}
