namespace StableDiffusion.Weights;

/// <summary>A tensor for <see cref="SafetensorsFile.Write"/>: its name, element type, shape, size, and what fills its bytes.</summary>
internal sealed record TensorToWrite(string Name, TensorElementType ElementType, IReadOnlyList<long> Shape, long ByteCount, FillBytes Write);

/// <summary>Fills a tensor's bytes (little-endian, row-major) into <paramref name="destination"/>, exactly their length.</summary>
internal delegate void FillBytes(Span<byte> destination);
