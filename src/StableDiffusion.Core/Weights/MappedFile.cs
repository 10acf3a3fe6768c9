using System.IO.MemoryMappedFiles;

namespace StableDiffusion.Weights;

/// <summary>
/// A whole file mapped read-only, so tensors are read in place: no copy beyond the operating system's page cache, and
/// nothing read until it is used. Shared by the checkpoint and safetensors readers and the ONNX outline reader.
/// </summary>
internal sealed unsafe class MappedFile : IDisposable
{
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private byte* _start;

    private MappedFile(MemoryMappedFile map, MemoryMappedViewAccessor view, long length)
    {
        _map = map;
        _view = view;
        Length = length;
        byte* start = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref start);
        _start = start + view.PointerOffset;
    }

    /// <summary>The file's length in bytes.</summary>
    public long Length { get; }

    /// <summary>Maps <paramref name="stream"/>'s file, which must not be empty; the mapping takes ownership of the stream.</summary>
    public static MappedFile Map(FileStream stream)
    {
        long length = stream.Length;
        MemoryMappedFile map;
        try
        {
            map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
        }
        catch
        {
            stream.Dispose();
            throw;
        }

        try
        {
            return new MappedFile(map, map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read), length);
        }
        catch
        {
            map.Dispose();
            throw;
        }
    }

    /// <summary>The bytes at <paramref name="offset"/>; the caller has checked that the range lies in the file.</summary>
    /// <exception cref="ObjectDisposedException">The mapping was disposed.</exception>
    public ReadOnlySpan<byte> Read(long offset, int length)
    {
        ObjectDisposedException.ThrowIf(_start is null, this);
        if (offset < 0 || length < 0 || offset > Length - length)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"The range {offset} + {length} is outside the file's {Length} bytes.");
        }

        return new ReadOnlySpan<byte>(_start + offset, length);
    }

    /// <summary>A stream over a range of the file (for inflating compressed entries); the caller has checked the range.</summary>
    public Stream OpenRange(long offset, long length)
    {
        ObjectDisposedException.ThrowIf(_start is null, this);
        return new UnmanagedMemoryStream(_start + offset, length);
    }

    public void Dispose()
    {
        if (_start is null)
        {
            return;
        }

        _start = null;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }
}
