using Google.Protobuf;
using StableDiffusion.Weights;

namespace StableDiffusion.Onnx;

/// <summary>
/// Reads the outline of an ONNX model (<see cref="ModelOutline"/>: nodes, initializer locations, subgraphs) without its
/// tensor payloads: the payload fields are undeclared in the outline messages and discarded unread, and a file is
/// memory-mapped, so the weights of a 1 GB graph are skipped without touching their pages.
/// </summary>
internal static class OnnxOutline
{
    private static readonly MessageParser<ModelOutline> Parser = ModelOutline.Parser.WithDiscardUnknownFields(true);

    /// <summary>Reads the outline of the model in <paramref name="path"/>.</summary>
    /// <exception cref="InvalidDataException">The file is not a well-formed ONNX model.</exception>
    public static ModelOutline Read(string path)
    {
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
        long length = stream.Length;
        if (length == 0 || length > int.MaxValue)
        {
            stream.Dispose();
            // Protobuf messages, and so ONNX files, are smaller than 2 GB: larger weights live in external data files.
            return length == 0 ? Read([]) : throw Malformed($"{length} bytes is larger than a protobuf message can be");
        }

        using MappedFile file = MappedFile.Map(stream);
        return Read(file.Read(0, (int)length));
    }

    /// <summary>Reads the outline of the model in <paramref name="model"/>.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a well-formed ONNX model.</exception>
    public static ModelOutline Read(ReadOnlySpan<byte> model)
    {
        try
        {
            return Parser.ParseFrom(model);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw Malformed(e.Message.TrimEnd('.'), e);
        }
    }

    /// <summary>
    /// Reads <paramref name="model"/> whole: the fields the outline does not declare (the weights among them) are kept as
    /// unknown fields, so that the model can be written back, every field intact, after an edit of the outline's own.
    /// </summary>
    /// <exception cref="InvalidDataException">The bytes are not a well-formed ONNX model.</exception>
    public static ModelOutline ReadWhole(ReadOnlySpan<byte> model)
    {
        try
        {
            return ModelOutline.Parser.ParseFrom(model);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw Malformed(e.Message.TrimEnd('.'), e);
        }
    }

    /// <summary>Reads <paramref name="model"/> as a whole ONNX model, for edits beyond the outline.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a well-formed ONNX model.</exception>
    public static ModelProto ReadModel(ReadOnlySpan<byte> model)
    {
        try
        {
            return ModelProto.Parser.ParseFrom(model);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw Malformed(e.Message.TrimEnd('.'), e);
        }
    }

    private static InvalidDataException Malformed(string what, Exception? inner = null) =>
        new($"The file is not a valid ONNX model: {what}.", inner);
}
