namespace StableDiffusion.Models;

/// <summary>
/// An ONNX graph built in memory from a component's configuration, whose weights stay in their files as external data.
/// </summary>
/// <param name="Model">The serialized <c>ModelProto</c>.</param>
/// <param name="ExternalDataFolder">The folder the external-data locations are relative to.</param>
/// <param name="Path">What messages and <see cref="OnnxModel.ModelPath"/> name: the component folder it was built from.</param>
internal sealed record BuiltGraph(byte[] Model, string ExternalDataFolder, string Path);
