using System.Buffers;

namespace StableDiffusion.Safety;

/// <summary>
/// An 8-bit RGB resize that reproduces, bit for bit, either Pillow's <c>Image.resize(size, resample)</c> or torch's
/// antialiased uint8 interpolation (what torchvision's <c>resize</c> runs on uint8 tensors on the CPU). Written here
/// because no .NET imaging library gives their output: both convolve with a filter whose support widens by the
/// downscale factor, round the taps to fixed point and round and clip to 8 bits between the horizontal pass (first)
/// and the vertical pass. ImageSharp's bicubic resampler differs from them by several levels per pixel.
/// </summary>
/// <remarks>
/// <para>
/// Pillow's behaviour follows <c>src/libImaging/Resample.c</c>, <c>Geometry.c</c>'s affine scale for
/// <see cref="PilResampling.Nearest"/>, and <c>Image.resize</c>, which since Pillow 12.2 resizes images more than 100
/// times taller than wide vertically first. Torch's follows <c>separable_upsample_generic_Nd_kernel_impl</c> and its
/// uint8 loops (the AVX2 kernel gives the same integers).
/// </para>
/// <para>
/// An instance holds the taps for one input and output size and is immutable, so one instance serves any number of
/// threads. <see cref="ResizeRegion"/> computes only the requested rows and columns of the output (each output pixel
/// depends only on its own taps), which lets the centre crop skip the pixels it would throw away.
/// </para>
/// </remarks>
internal sealed class Uint8Resize
{
    private readonly ResampleAxis? _horizontal;
    private readonly ResampleAxis? _vertical;
    private readonly int[]? _nearestColumns;
    private readonly int[]? _nearestRows;
    private readonly bool _verticalFirst;

    public Uint8Resize(int inHeight, int inWidth, int outHeight, int outWidth, PilResampling filter, ImageProcessorBackend backend)
    {
        InHeight = inHeight;
        InWidth = inWidth;
        OutHeight = outHeight;
        OutWidth = outWidth;
        if (inHeight == outHeight && inWidth == outWidth)
        {
            return; // Both return the image unchanged.
        }

        if (backend == ImageProcessorBackend.Torchvision)
        {
            // transformers replaces Lanczos by bicubic on this backend; other filters are rejected by the configuration.
            _horizontal = outWidth != inWidth ? ResampleAxis.ForTorchBicubic(inWidth, outWidth) : null;
            _vertical = outHeight != inHeight ? ResampleAxis.ForTorchBicubic(inHeight, outHeight) : null;
            return;
        }

        if (filter == PilResampling.Nearest)
        {
            _nearestColumns = NearestIndices(inWidth, outWidth);
            _nearestRows = NearestIndices(inHeight, outHeight);
            return;
        }

        // A pass whose size does not change is skipped.
        _horizontal = outWidth != inWidth ? ResampleAxis.ForPillow(inWidth, outWidth, filter) : null;
        _vertical = outHeight != inHeight ? ResampleAxis.ForPillow(inHeight, outHeight, filter) : null;
        _verticalFirst = inHeight > inWidth * 100L && outHeight < inHeight;
    }

    public int InHeight { get; }

    public int InWidth { get; }

    public int OutHeight { get; }

    public int OutWidth { get; }

    /// <summary>
    /// Writes rows [<paramref name="y0"/>, <paramref name="y1"/>) and columns [<paramref name="x0"/>, <paramref name="x1"/>)
    /// of the resized image to <paramref name="destination"/> (interleaved RGB, <c>(x1 - x0) * 3</c> bytes a row).
    /// </summary>
    public void ResizeRegion(ReadOnlySpan<byte> source, int y0, int y1, int x0, int x1, Span<byte> destination)
    {
        int inStride = InWidth * 3;
        int rowBytes = (x1 - x0) * 3;
        if (_nearestColumns is not null)
        {
            NearestRegion(source, inStride, y0, y1, x0, x1, destination);
        }
        else if (_horizontal is null && _vertical is null)
        {
            for (int y = y0; y < y1; y++)
            {
                source.Slice((y * inStride) + (x0 * 3), rowBytes).CopyTo(destination.Slice((y - y0) * rowBytes, rowBytes));
            }
        }
        else if (_vertical is null)
        {
            HorizontalPass(source, inStride, y0, y1 - y0, 0, _horizontal!, x0, x1, destination);
        }
        else if (_horizontal is null)
        {
            VerticalPass(source, inStride, 0, x0 * 3, rowBytes, _vertical, y0, y1, destination);
        }
        else if (!_verticalFirst)
        {
            (int firstRow, int endRow) = _vertical.SourceRange(y0, y1);
            byte[] temporary = ArrayPool<byte>.Shared.Rent((endRow - firstRow) * rowBytes);
            try
            {
                HorizontalPass(source, inStride, firstRow, endRow - firstRow, 0, _horizontal, x0, x1, temporary);
                VerticalPass(temporary, rowBytes, firstRow, 0, rowBytes, _vertical, y0, y1, destination);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(temporary);
            }
        }
        else
        {
            (int firstColumn, int endColumn) = _horizontal.SourceRange(x0, x1);
            int temporaryRowBytes = (endColumn - firstColumn) * 3;
            byte[] temporary = ArrayPool<byte>.Shared.Rent((y1 - y0) * temporaryRowBytes);
            try
            {
                VerticalPass(source, inStride, 0, firstColumn * 3, temporaryRowBytes, _vertical, y0, y1, temporary);
                HorizontalPass(temporary, temporaryRowBytes, 0, y1 - y0, firstColumn, _horizontal, x0, x1, destination);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(temporary);
            }
        }
    }

    /// <summary>Resamples <paramref name="rows"/> rows along x; source column <paramref name="sourceColumnOrigin"/> is at offset 0.</summary>
    private static void HorizontalPass(
        ReadOnlySpan<byte> source, int sourceStride, int firstRow, int rows, int sourceColumnOrigin, ResampleAxis axis, int x0, int x1, Span<byte> destination)
    {
        int rowBytes = (x1 - x0) * 3;
        int kernelSize = axis.KernelSize;
        int precision = axis.Precision;
        int half = 1 << (precision - 1);
        int[] start = axis.Start;
        int[] count = axis.Count;
        int[] allWeights = axis.Weights;
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<byte> line = source.Slice((firstRow + r) * sourceStride, sourceStride);
            Span<byte> output = destination.Slice(r * rowBytes, rowBytes);
            for (int x = x0; x < x1; x++)
            {
                ReadOnlySpan<int> weights = allWeights.AsSpan(x * kernelSize, count[x]);
                ReadOnlySpan<byte> pixels = line.Slice((start[x] - sourceColumnOrigin) * 3, weights.Length * 3);
                int red = half, green = half, blue = half;
                for (int t = 0; t < weights.Length; t++)
                {
                    int k = weights[t];
                    red += pixels[3 * t] * k;
                    green += pixels[(3 * t) + 1] * k;
                    blue += pixels[(3 * t) + 2] * k;
                }

                int o = (x - x0) * 3;
                output[o] = Clip8(red, precision);
                output[o + 1] = Clip8(green, precision);
                output[o + 2] = Clip8(blue, precision);
            }
        }
    }

    /// <summary>
    /// Resamples output rows [<paramref name="y0"/>, <paramref name="y1"/>) along y from <paramref name="rowBytes"/>-byte
    /// row segments that start <paramref name="columnByteOffset"/> bytes into each source row; source row
    /// <paramref name="sourceRowOrigin"/> is at offset 0.
    /// </summary>
    private static void VerticalPass(
        ReadOnlySpan<byte> source, int sourceStride, int sourceRowOrigin, int columnByteOffset, int rowBytes, ResampleAxis axis, int y0, int y1, Span<byte> destination)
    {
        int kernelSize = axis.KernelSize;
        int precision = axis.Precision;
        int[] sums = ArrayPool<int>.Shared.Rent(rowBytes);
        try
        {
            Span<int> accumulator = sums.AsSpan(0, rowBytes);
            for (int y = y0; y < y1; y++)
            {
                accumulator.Fill(1 << (precision - 1));
                int first = axis.Start[y] - sourceRowOrigin;
                ReadOnlySpan<int> weights = axis.Weights.AsSpan(y * kernelSize, axis.Count[y]);

                // Integer sums are exact, so adding tap by tap over whole rows equals the per-pixel order of the originals.
                for (int t = 0; t < weights.Length; t++)
                {
                    MultiplyAdd(source.Slice(((first + t) * sourceStride) + columnByteOffset, rowBytes), weights[t], accumulator);
                }

                Span<byte> output = destination.Slice((y - y0) * rowBytes, rowBytes);
                for (int i = 0; i < output.Length; i++)
                {
                    output[i] = Clip8(accumulator[i], precision);
                }
            }
        }
        finally
        {
            ArrayPool<int>.Shared.Return(sums);
        }
    }

    private static void MultiplyAdd(ReadOnlySpan<byte> row, int weight, Span<int> accumulator)
    {
        for (int i = 0; i < row.Length; i++)
        {
            accumulator[i] += row[i] * weight;
        }
    }

    private void NearestRegion(ReadOnlySpan<byte> source, int inStride, int y0, int y1, int x0, int x1, Span<byte> destination)
    {
        int rowBytes = (x1 - x0) * 3;
        for (int y = y0; y < y1; y++)
        {
            Span<byte> output = destination.Slice((y - y0) * rowBytes, rowBytes);
            int sourceRow = _nearestRows![y];
            for (int x = x0; x < x1; x++)
            {
                int sourceColumn = _nearestColumns![x];
                int o = (x - x0) * 3;
                if (sourceRow < 0 || sourceColumn < 0)
                {
                    output.Slice(o, 3).Clear(); // Pillow leaves pixels that map outside the image at 0.
                    continue;
                }

                source.Slice((sourceRow * inStride) + (sourceColumn * 3), 3).CopyTo(output.Slice(o, 3));
            }
        }
    }

    /// <summary>
    /// Geometry.c's affine scale: the source coordinate starts at half a step and accumulates the step in double
    /// precision; each output pixel takes the source pixel the truncated coordinate names.
    /// </summary>
    private static int[] NearestIndices(int inSize, int outSize)
    {
        double step = (double)(float)inSize / outSize;
        double position = step * 0.5;
        var indices = new int[outSize];
        for (int i = 0; i < outSize; i++)
        {
            int index = position < 0.0 ? -1 : (int)position;
            indices[i] = index < inSize ? index : -1;
            position += step;
        }

        return indices;
    }

    private static byte Clip8(int sum, int precision) => (byte)Math.Clamp(sum >> precision, 0, 255);
}
