using System.Buffers.Binary;
using System.Text;
using StableDiffusion.Models;
using StableDiffusion.Weights.Torch;

namespace StableDiffusion.Weights;

/// <summary>
/// A PyTorch checkpoint (<c>.ckpt</c>, <c>.bin</c>, <c>.pt</c>, <c>.pth</c>) written by <c>torch.save</c>, read without
/// Python and without running anything the file contains: its tensors as <see cref="TorchCheckpointTensor"/>s, named the
/// way PyTorch's state dicts name them, with their data memory-mapped from the file.
/// </summary>
/// <remarks>
/// <para>
/// A torch.save file is a zip holding a Python pickle (<c>data.pkl</c>) and one entry per tensor storage. Python's
/// <c>torch.load</c> runs the pickle, which can import and call anything; this reader interprets only the records torch
/// writes for tensors, state dicts and their metadata, and refuses any other global the pickle names with an
/// <see cref="UnsafePickleException"/> naming it, before anything could run. Accepted: dicts, <c>collections.OrderedDict</c>,
/// lists, tuples, numbers, strings, tensors and parameters (<c>torch._utils._rebuild_tensor_v2</c>,
/// <c>_rebuild_parameter</c>, <c>_rebuild_parameter_with_state</c>) of float32, float16, bfloat16, float64 and integer or
/// bool storages, <c>torch.Size</c>, sets, and the harmless extras some Stable Diffusion <c>.ckpt</c> files hold beside
/// their weights (Lightning's <c>ModelCheckpoint</c> class as a dictionary key, numpy scalars).
/// </para>
/// <para>
/// Refused with a <see cref="ModelLoadException"/> saying why: the legacy format of PyTorch before 1.6 (a bare pickle
/// stream or a tar file; re-save it with a current PyTorch, or convert it to safetensors), TorchScript archives, quantized
/// and complex tensors, big-endian files, encrypted or split zips, and every damaged file: truncated, with lengths that
/// lie, a storage missing or smaller than its tensors, a zip bomb, entry names that leave the archive, or structures past
/// the limits that keep a hostile file from hanging the reader or exhausting memory.
/// </para>
/// </remarks>
/// <example>
/// <code>
/// using var checkpoint = TorchCheckpoint.Open("v1-5-pruned-emaonly.ckpt");
/// TorchCheckpointTensor bias = checkpoint.StateDict["model.diffusion_model.out.2.bias"];
/// float[] values = new float[bias.ElementCount];
/// bias.CopyTo(values);
/// </code>
/// </example>
public sealed class TorchCheckpoint : IDisposable
{
    private const string LegacyAdvice =
        "(re-saving it with a current PyTorch also works: torch.save(torch.load(path, weights_only=True), new_path))";

    private readonly CheckpointArchive _archive;

    private TorchCheckpoint(string path, CheckpointArchive archive, CheckpointContents contents)
    {
        Path = path;
        _archive = archive;
        Tensors = contents.Tensors;
        StateDict = contents.StateDict;
        Values = contents.Values;
    }

    /// <summary>The checkpoint file.</summary>
    public string Path { get; }

    /// <summary>
    /// Every tensor in the file, by its path from the pickled root: dictionary keys and list indices joined with dots
    /// (<c>state_dict.model.diffusion_model.out.2.bias</c>, <c>string_to_param.*</c>, <c>text_model.embeddings.position_ids</c>).
    /// </summary>
    public IReadOnlyDictionary<string, TorchCheckpointTensor> Tensors { get; }

    /// <summary>
    /// The model's weights: the tensors under the root's <c>"state_dict"</c> entry (followed as long as there is one, as
    /// diffusers does for <c>.ckpt</c> files), named relative to it; for a file without one (diffusers' <c>.bin</c> files,
    /// textual inversion <c>.pt</c> files) the same as <see cref="Tensors"/>.
    /// </summary>
    public IReadOnlyDictionary<string, TorchCheckpointTensor> StateDict { get; }

    /// <summary>
    /// Every other value, by its path from the root (<c>global_step</c>, <c>epoch</c>, a textual inversion's <c>name</c>
    /// and <c>step</c>): a <see cref="long"/> (or <see cref="System.Numerics.BigInteger"/> past 64 bits), <see cref="double"/>,
    /// <see cref="bool"/>, <see cref="string"/> or <see cref="byte"/> array. None and class names are left out.
    /// </summary>
    public IReadOnlyDictionary<string, object> Values { get; }

    /// <summary>Opens <paramref name="path"/> and reads its structure; tensor data is read only when asked for.</summary>
    /// <remarks>Tensors may be read from several threads at once; disposing the checkpoint while they are read is not supported.</remarks>
    /// <param name="path">A file written by <c>torch.save</c>.</param>
    /// <returns>The checkpoint, which holds the file mapped until it is disposed.</returns>
    /// <exception cref="UnsafePickleException">The file names a Python global outside the few that describe tensors.</exception>
    /// <exception cref="ModelLoadException">The file is missing, damaged, or in a format this reader refuses; the message says which and what to do.</exception>
    public static TorchCheckpoint Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (Exception error) when (error is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new ModelLoadException($"The checkpoint '{path}' does not exist.", path, error);
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            throw new ModelLoadException($"The checkpoint '{path}' cannot be opened: {error.Message}", path, error);
        }

        if (stream.Length == 0)
        {
            stream.Dispose();
            throw CheckpointErrors.Damaged(path, "the file is empty");
        }

        MappedFile file;
        try
        {
            file = MappedFile.Map(stream);
        }
        catch (IOException error)
        {
            throw new ModelLoadException($"The checkpoint '{path}' cannot be mapped into memory: {error.Message}", path, error);
        }

        try
        {
            if (!CheckpointArchive.LooksLikeZip(file))
            {
                throw NotAZip(file, path);
            }

            CheckpointArchive archive = CheckpointArchive.Read(file, path);
            return new TorchCheckpoint(path, archive, ReadContents(archive, path));
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Releases the mapped file; tensors of this checkpoint can no longer be read.</summary>
    public void Dispose() => _archive.Dispose();

    private static CheckpointContents ReadContents(CheckpointArchive archive, string path)
    {
        if (archive.Find("constants.pkl") is not null || archive.HasRecordUnder("code/"))
        {
            throw CheckpointErrors.Unsupported(path, "it is a TorchScript module (torch.jit.save), which holds code, not a torch.save checkpoint");
        }

        ZipEntry pickle = archive.Find("data.pkl")
            ?? throw CheckpointErrors.Damaged(path, $"the zip has no '{archive.Folder}data.pkl', the record torch.save writes first");
        if (archive.Find("byteorder") is { } byteOrder)
        {
            string order = Encoding.ASCII.GetString(archive.Read(byteOrder, 0, (int)Math.Min(byteOrder.Size, 16)));
            if (order == "big")
            {
                throw CheckpointErrors.Unsupported(path, "it was saved on a big-endian machine");
            }

            if (order != "little")
            {
                throw CheckpointErrors.Damaged(path, $"its byteorder record says '{order}'");
            }
        }

        if (pickle.Size > CheckpointLimits.MaxPickleBytes)
        {
            throw CheckpointErrors.Damaged(path, $"its data.pkl holds {pickle.Size} bytes, more than the {CheckpointLimits.MaxPickleBytes} a checkpoint's structure needs");
        }

        var storages = new Dictionary<string, TorchStorage>(StringComparer.Ordinal);
        TorchStorage LoadStorage(string key, PickleGlobal type, long count) => FindStorage(archive, path, storages, key, type, count);
        object? root = PickleMachine.Run(archive.Read(pickle, 0, (int)pickle.Size).ToArray(), path, LoadStorage);
        return CheckpointContents.Flatten(root, path);
    }

    /// <summary>The storage <paramref name="key"/>, bound to its zip entry, whose size must match the record exactly.</summary>
    private static TorchStorage FindStorage(CheckpointArchive archive, string path, Dictionary<string, TorchStorage> storages, string key, PickleGlobal type, long count)
    {
        if (type.StorageType is not { } elementType)
        {
            throw CheckpointErrors.Unsupported(path, $"it holds a {type.FullName}; quantized and complex tensors are not supported");
        }

        if (storages.TryGetValue(key, out TorchStorage? known))
        {
            return known.ElementType == elementType && known.ElementCount == count
                ? known
                : throw CheckpointErrors.Damaged(path, $"storage '{key}' is described twice, as {known.ElementCount} {known.ElementType} and as {count} {elementType} elements");
        }

        string name = $"data/{key}";
        ZipEntry entry = archive.Find(name)
            ?? throw CheckpointErrors.Damaged(path, $"its pickle refers to storage '{key}', but the zip has no entry '{archive.Folder}{name}'");
        int elementSize = ElementSizes.Of(elementType);
        if (count > long.MaxValue / elementSize || entry.Size != count * elementSize)
        {
            throw CheckpointErrors.Damaged(path, $"storage '{key}' is declared as {count} {elementType} elements, but its entry '{entry.Name}' holds {entry.Size} bytes");
        }

        var storage = new TorchStorage(archive, entry, key, elementType, count);
        storages.Add(key, storage);
        return storage;
    }

    /// <summary>Why a file without a zip directory is not read, from what it starts with.</summary>
    private static ModelLoadException NotAZip(MappedFile file, string path)
    {
        ReadOnlySpan<byte> head = file.Read(0, (int)Math.Min(file.Length, 512));
        if (head.StartsWith("PK\x03\x04"u8))
        {
            return CheckpointErrors.Damaged(path, "it starts as a zip but its directory at the end is missing (an incomplete download?)");
        }

        if (head.StartsWith("PYTORCH1"u8))
        {
            return CheckpointErrors.Unsupported(path, "it is in the archive format of a PyTorch preview release");
        }

        if (head.Length >= 2 && head[0] == 0x80 && head[1] <= 5)
        {
            return CheckpointErrors.Unsupported(path, $"it is a bare pickle stream, the legacy format torch.save wrote before PyTorch 1.6, which this reader does not take {LegacyAdvice}");
        }

        if (head.Length >= 262 && head[257..262].SequenceEqual("ustar"u8))
        {
            return CheckpointErrors.Unsupported(path, $"it is a tar archive, the format of PyTorch 0.3 and earlier, which this reader does not take {LegacyAdvice}");
        }

        if (head.Length >= 9 && head[8] == (byte)'{' && BinaryPrimitives.ReadUInt64LittleEndian(head) <= (ulong)file.Length - 8)
        {
            return new ModelLoadException($"'{path}' is a safetensors file, not a PyTorch pickle, whatever its extension says: open it as safetensors.", path);
        }

        return CheckpointErrors.Damaged(path, "it is neither a zip written by torch.save nor a legacy PyTorch file");
    }
}
