using System.Text.Json.Nodes;
using StableDiffusion.Testing;

namespace StableDiffusion.Core.Tests.Hardening.Support;

/// <summary>
/// A temporary copy of a fixture model folder that a test may damage (the fixtures themselves are never changed);
/// deleted on dispose.
/// </summary>
internal sealed class ModelFolderCopy : IDisposable
{
    private ModelFolderCopy(string path) => Path = path;

    /// <summary>The copy's folder.</summary>
    public string Path { get; }

    /// <summary>Copies <paramref name="fixtureFolder"/> (for example <see cref="Fixtures.TinyModel"/>) to a new temporary folder.</summary>
    public static ModelFolderCopy Of(string fixtureFolder)
    {
        Fixtures.Require();
        string target = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "sd-hardening-models", Guid.NewGuid().ToString("N"));
        foreach (string file in Directory.EnumerateFiles(fixtureFolder, "*", SearchOption.AllDirectories))
        {
            string copy = System.IO.Path.Combine(target, System.IO.Path.GetRelativePath(fixtureFolder, file));
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(copy)!);
            File.Copy(file, copy);
            // The fixtures are read-only; the copy must be writable to be damaged.
            File.SetAttributes(copy, FileAttributes.Normal);
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(copy, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            }
        }

        return new ModelFolderCopy(target);
    }

    /// <summary>The full path of <paramref name="relative"/> ('/'-separated) inside the copy.</summary>
    public string PathOf(string relative) => System.IO.Path.Combine(Path, relative.Replace('/', System.IO.Path.DirectorySeparatorChar));

    /// <summary>Deletes everything in the folder.</summary>
    public void Clear()
    {
        foreach (string entry in Directory.EnumerateFileSystemEntries(Path))
        {
            Delete(System.IO.Path.GetFileName(entry));
        }
    }

    /// <summary>Deletes a file or a folder.</summary>
    public void Delete(string relative)
    {
        string path = PathOf(relative);
        if (Directory.Exists(path))
        {
            Directory.Delete(path, recursive: true);
        }
        else
        {
            File.Delete(path);
        }
    }

    /// <summary>Keeps the first <paramref name="fraction"/> of a file's bytes, as an interrupted copy would.</summary>
    public void Truncate(string relative, double fraction = 0.5)
    {
        byte[] bytes = File.ReadAllBytes(PathOf(relative));
        File.WriteAllBytes(PathOf(relative), bytes[..(int)(bytes.Length * fraction)]);
    }

    /// <summary>Writes a file (creating its folder).</summary>
    public void Write(string relative, string text) => Write(relative, System.Text.Encoding.UTF8.GetBytes(text));

    /// <summary>Writes a file (creating its folder).</summary>
    public void Write(string relative, byte[] bytes)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(PathOf(relative))!);
        File.WriteAllBytes(PathOf(relative), bytes);
    }

    /// <summary>Replaces <paramref name="relative"/> with a file of another folder (a graph of another component or model).</summary>
    public void Replace(string relative, string sourceFolder, string sourceRelative) =>
        Write(relative, File.ReadAllBytes(System.IO.Path.Combine(sourceFolder, sourceRelative)));

    /// <summary>Changes a JSON file's root object.</summary>
    public void EditJson(string relative, Action<JsonObject> edit)
    {
        JsonObject root = JsonNode.Parse(File.ReadAllText(PathOf(relative)))!.AsObject();
        edit(root);
        Write(relative, root.ToJsonString());
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
