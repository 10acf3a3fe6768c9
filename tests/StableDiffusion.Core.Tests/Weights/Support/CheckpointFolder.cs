namespace StableDiffusion.Core.Tests.Weights.Support;

/// <summary>A temporary folder for the checkpoints a test writes, deleted afterwards.</summary>
internal sealed class CheckpointFolder : IDisposable
{
    public CheckpointFolder()
    {
        Path = Directory.CreateTempSubdirectory("sd-checkpoint-").FullName;
    }

    public string Path { get; }

    /// <summary>A path in the folder.</summary>
    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
