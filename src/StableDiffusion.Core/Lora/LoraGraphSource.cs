using StableDiffusion.Onnx;

namespace StableDiffusion.Lora;

/// <summary>Where a component's graph comes from: an ONNX file, or bytes in memory (an edited export, a built graph).</summary>
/// <param name="Path">The graph file, or what messages name for a graph in memory.</param>
/// <param name="Model">The graph's bytes when the session was created from memory; null to read <paramref name="Path"/>.</param>
/// <param name="ExternalDataFolder">The folder its external-data locations are relative to.</param>
internal sealed record LoraGraphSource(string Path, byte[]? Model, string ExternalDataFolder)
{
    /// <summary>An export loaded from its file, or from <paramref name="edited"/> bytes of it.</summary>
    public static LoraGraphSource ForFile(string path, byte[]? edited = null) =>
        new(path, edited, System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);

    /// <summary>Parses the whole model, weights included.</summary>
    public ModelProto ReadModel() => Model is not null ? ModelProto.Parser.ParseFrom(Model) : ModelProto.Parser.ParseFrom(File.ReadAllBytes(Path));
}
