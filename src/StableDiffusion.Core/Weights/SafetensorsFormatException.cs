using StableDiffusion.Models;

namespace StableDiffusion.Weights;

/// <summary>What is wrong with a safetensors file (<see cref="SafetensorsFormatException.Problem"/>).</summary>
public enum SafetensorsProblem
{
    /// <summary>The file is too short to hold the 8-byte header length.</summary>
    Truncated,

    /// <summary>The header length runs past the end of the file, or is larger than any real header.</summary>
    HeaderLength,

    /// <summary>The header is not the JSON object the format defines (or a tensor entry in it is malformed).</summary>
    InvalidHeader,

    /// <summary>A tensor names the same tensor as an earlier entry.</summary>
    DuplicateName,

    /// <summary>A tensor has a <c>dtype</c> the format does not define.</summary>
    UnknownDType,

    /// <summary>A tensor's byte range runs past the end of the file, or ends before it starts.</summary>
    OffsetsOutOfRange,

    /// <summary>Two tensors share bytes.</summary>
    OverlappingTensors,

    /// <summary>A tensor's byte range does not hold exactly its shape times its element size.</summary>
    SizeMismatch,

    /// <summary>Bytes of the data section belong to no tensor (the format forbids holes and trailing data).</summary>
    UnusedBytes,
}

/// <summary>
/// A safetensors file is malformed: its header lies about its tensors, or the file is truncated. The message names the
/// file, the tensor and the problem; nothing has been read past the header.
/// </summary>
public sealed class SafetensorsFormatException : ModelLoadException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="problem">What is wrong.</param>
    /// <param name="message">What is wrong, where, and what to do.</param>
    /// <param name="path">The file.</param>
    /// <param name="innerException">The underlying error, if any.</param>
    public SafetensorsFormatException(SafetensorsProblem problem, string message, string path, Exception? innerException = null)
        : base(message, path, innerException)
    {
        Problem = problem;
    }

    /// <summary>What is wrong with the file.</summary>
    public SafetensorsProblem Problem { get; }
}
