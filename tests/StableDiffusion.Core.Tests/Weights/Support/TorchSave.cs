using System.Text;

namespace StableDiffusion.Core.Tests.Weights.Support;

/// <summary>
/// What <c>torch.save(obj, path)</c> writes in PyTorch 2.x: a zip whose records, under one folder, come in this order:
/// <c>data.pkl</c>, <c>.format_version</c>, <c>.storage_alignment</c>, <c>byteorder</c>, <c>data/&lt;key&gt;</c> for each
/// storage in key order, <c>version</c>, <c>.data/serialization_id</c>.
/// </summary>
internal static class TorchSave
{
    /// <summary>The folder torch uses when saving to a stream (when saving to a path it is the file's stem).</summary>
    public const string Archive = "archive";

    /// <summary>Saves <paramref name="root"/> to <paramref name="path"/>.</summary>
    public static void Save(string path, object? root, string archive = Archive) => TorchZipWriter.Write(path, Records(root, archive));

    /// <summary>The records of <paramref name="root"/>, for a test to alter before writing them.</summary>
    public static List<ZipRecord> Records(object? root, string archive = Archive)
    {
        var writer = new TorchPickleWriter();
        byte[] pickle = writer.Write(root);
        return Records(pickle, writer.Storages.Select(s => (s.Key, s.Storage.Bytes)), archive);
    }

    /// <summary>The records of a hand-made <paramref name="pickle"/> with the given storages.</summary>
    public static List<ZipRecord> Records(byte[] pickle, IEnumerable<(string Key, byte[] Bytes)> storages, string archive = Archive)
    {
        List<ZipRecord> records =
        [
            new($"{archive}/data.pkl", pickle),
            new($"{archive}/.format_version", Ascii("1")),
            new($"{archive}/.storage_alignment", Ascii("64")),
            new($"{archive}/byteorder", Ascii("little")),
        ];
        records.AddRange(storages.Select(s => new ZipRecord($"{archive}/data/{s.Key}", s.Bytes)));
        records.Add(new($"{archive}/version", Ascii("3\n")));
        records.Add(new($"{archive}/.data/serialization_id", Ascii("1234567890123456789012345678901234567890")));
        return records;
    }

    /// <summary>Writes a checkpoint whose data.pkl is <paramref name="pickle"/>, with no storages.</summary>
    public static void SavePickle(string path, byte[] pickle) => TorchZipWriter.Write(path, Records(pickle, []));

    private static byte[] Ascii(string text) => Encoding.ASCII.GetBytes(text);
}
