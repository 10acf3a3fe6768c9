using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

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
        ref int weights = ref MemoryMarshal.GetArrayDataReference(axis.Weights);
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<byte> line = source.Slice((firstRow + r) * sourceStride, sourceStride);
            Span<byte> output = destination.Slice(r * rowBytes, rowBytes);
            for (int x = x0; x < x1; x++)
            {
                // The taps of every output column lie inside the source row (the axis clamps them), so the inner loops
                // read through references without per-element bounds checks; the slice checks the whole window once.
                int taps = count[x];
                int first = (start[x] - sourceColumnOrigin) * 3;
                ref byte pixel = ref MemoryMarshal.GetReference(line.Slice(first, taps * 3));
                ref int weight = ref Unsafe.Add(ref weights, x * kernelSize);
                int o = (x - x0) * 3;
                if (Vector128.IsHardwareAccelerated && first + (taps * 3) < line.Length)
                {
                    // One vector per tap: R, G, B and the next pixel's R (ignored), widened to ints. The window must
                    // have one byte after it, which every column but the row's last has.
                    Vector128<int> sum = Vector128.Create(half);
                    for (int t = 0; t < taps; t++)
                    {
                        Vector128<byte> bytes = Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref pixel, 3 * t))).AsByte();
                        Vector128<int> values = Vector128.WidenLower(Vector128.WidenLower(bytes)).AsInt32();
                        sum += values * Unsafe.Add(ref weight, t);
                    }

                    output[o] = Clip8(sum.GetElement(0), precision);
                    output[o + 1] = Clip8(sum.GetElement(1), precision);
                    output[o + 2] = Clip8(sum.GetElement(2), precision);
                    continue;
                }

                int red = half, green = half, blue = half;
                for (int t = 0; t < taps; t++)
                {
                    int k = Unsafe.Add(ref weight, t);
                    red += Unsafe.Add(ref pixel, 3 * t) * k;
                    green += Unsafe.Add(ref pixel, (3 * t) + 1) * k;
                    blue += Unsafe.Add(ref pixel, (3 * t) + 2) * k;
                }

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

                StoreClipped(accumulator, precision, destination.Slice((y - y0) * rowBytes, rowBytes));
            }
        }
        finally
        {
            ArrayPool<int>.Shared.Return(sums);
        }
    }

    /// <summary><c>accumulator[i] += row[i] * weight</c>, widening bytes to ints a vector at a time.</summary>
    private static void MultiplyAdd(ReadOnlySpan<byte> row, int weight, Span<int> accumulator)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && row.Length >= Vector<byte>.Count)
        {
            var factor = new Vector<int>(weight);
            Span<Vector<int>> sums = MemoryMarshal.Cast<int, Vector<int>>(accumulator);
            for (; i <= row.Length - Vector<byte>.Count; i += Vector<byte>.Count)
            {
                Vector.Widen(new Vector<byte>(row[i..]), out Vector<ushort> low, out Vector<ushort> high);
                Vector.Widen(low, out Vector<uint> a, out Vector<uint> b);
                Vector.Widen(high, out Vector<uint> c, out Vector<uint> d);
                int v = i / Vector<int>.Count;
                sums[v] += Vector.AsVectorInt32(a) * factor;
                sums[v + 1] += Vector.AsVectorInt32(b) * factor;
                sums[v + 2] += Vector.AsVectorInt32(c) * factor;
                sums[v + 3] += Vector.AsVectorInt32(d) * factor;
            }
        }

        for (; i < row.Length; i++)
        {
            accumulator[i] += row[i] * weight;
        }
    }

    /// <summary><c>output[i] = clamp(sums[i] &gt;&gt; precision, 0, 255)</c>, a vector at a time.</summary>
    private static void StoreClipped(ReadOnlySpan<int> sums, int precision, Span<byte> output)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && output.Length >= Vector<byte>.Count)
        {
            ReadOnlySpan<Vector<int>> vectors = MemoryMarshal.Cast<int, Vector<int>>(sums);
            Vector<int> max = new(255);
            for (; i <= output.Length - Vector<byte>.Count; i += Vector<byte>.Count)
            {
                int v = i / Vector<int>.Count;
                Vector<int> a = Vector.Min(Vector.Max(Vector.ShiftRightArithmetic(vectors[v], precision), Vector<int>.Zero), max);
                Vector<int> b = Vector.Min(Vector.Max(Vector.ShiftRightArithmetic(vectors[v + 1], precision), Vector<int>.Zero), max);
                Vector<int> c = Vector.Min(Vector.Max(Vector.ShiftRightArithmetic(vectors[v + 2], precision), Vector<int>.Zero), max);
                Vector<int> d = Vector.Min(Vector.Max(Vector.ShiftRightArithmetic(vectors[v + 3], precision), Vector<int>.Zero), max);
                Vector<ushort> low = Vector.Narrow(Vector.AsVectorUInt32(a), Vector.AsVectorUInt32(b));
                Vector<ushort> high = Vector.Narrow(Vector.AsVectorUInt32(c), Vector.AsVectorUInt32(d));
                Vector.Narrow(low, high).CopyTo(output[i..]);
            }
        }

        for (; i < output.Length; i++)
        {
            output[i] = Clip8(sums[i], precision);
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
