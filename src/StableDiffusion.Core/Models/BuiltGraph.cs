namespace StableDiffusion.Models;

/// <summary>
/// An ONNX graph held in memory (built from a component's configuration, or an export's graph read and possibly edited),
/// whose weights stay in their files as external data.
/// </summary>
/// <param name="Model">The serialized <c>ModelProto</c>.</param>
/// <param name="ExternalDataFolder">The folder the external-data locations are relative to.</param>
/// <param name="Path">What messages and <see cref="OnnxModel.ModelPath"/> name: the component folder it was built from, or the graph file.</param>
internal sealed record BuiltGraph(byte[] Model, string ExternalDataFolder, string Path)
{
    /// <summary>The graph file <paramref name="path"/> (its external weights beside it), as <paramref name="edited"/> when given, else read.</summary>
    /// <exception cref="IOException">The file cannot be read.</exception>
    public static BuiltGraph OfFile(string path, byte[]? edited = null) =>
        new(edited ?? File.ReadAllBytes(path), System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!, path);
}
