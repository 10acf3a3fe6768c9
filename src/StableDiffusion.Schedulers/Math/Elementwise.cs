using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace StableDiffusion.Schedulers;

/// <summary>An element-wise operation of two inputs, with a scalar and a SIMD form that round identically.</summary>
internal interface IElementwiseOp2
{
    float Invoke(float a, float b);

    Vector<float> Invoke(Vector<float> a, Vector<float> b);
}

/// <summary>An element-wise operation of three inputs.</summary>
internal interface IElementwiseOp3
{
    float Invoke(float a, float b, float c);

    Vector<float> Invoke(Vector<float> a, Vector<float> b, Vector<float> c);
}

/// <summary>An element-wise operation of four inputs.</summary>
internal interface IElementwiseOp4
{
    float Invoke(float a, float b, float c, float d);

    Vector<float> Invoke(Vector<float> a, Vector<float> b, Vector<float> c, Vector<float> d);
}

/// <summary>An element-wise operation of five inputs.</summary>
internal interface IElementwiseOp5
{
    float Invoke(float a, float b, float c, float d, float e);

    Vector<float> Invoke(Vector<float> a, Vector<float> b, Vector<float> c, Vector<float> d, Vector<float> e);
}

/// <summary>
/// Fused element-wise loops over float32 spans. Each scheduler writes its update formula as a small struct operation,
/// in the order diffusers evaluates it, so that one pass over memory gives torch's float32 rounding; the JIT specialises
/// and inlines the struct. Inputs may alias the destination (each element is read before it is written).
/// </summary>
/// <remarks>
/// <see cref="System.Numerics.Tensors.TensorPrimitives"/> covers single operations; these loops exist because a denoising step is a chain of
/// five to ten of them, and fusing the chain keeps a step at one or two passes over the latents.
/// </remarks>
internal static class Elementwise
{
    public static void Apply<TOp>(TOp op, ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> destination)
        where TOp : struct, IElementwiseOp2
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            ReadOnlySpan<Vector<float>> va = MemoryMarshal.Cast<float, Vector<float>>(a);
            ReadOnlySpan<Vector<float>> vb = MemoryMarshal.Cast<float, Vector<float>>(b);
            Span<Vector<float>> vd = MemoryMarshal.Cast<float, Vector<float>>(destination);
            for (int v = 0; v < vd.Length; v++)
            {
                vd[v] = op.Invoke(va[v], vb[v]);
            }

            i = vd.Length * Vector<float>.Count;
        }

        for (; i < destination.Length; i++)
        {
            destination[i] = op.Invoke(a[i], b[i]);
        }
    }

    public static void Apply<TOp>(TOp op, ReadOnlySpan<float> a, ReadOnlySpan<float> b, ReadOnlySpan<float> c, Span<float> destination)
        where TOp : struct, IElementwiseOp3
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            ReadOnlySpan<Vector<float>> va = MemoryMarshal.Cast<float, Vector<float>>(a);
            ReadOnlySpan<Vector<float>> vb = MemoryMarshal.Cast<float, Vector<float>>(b);
            ReadOnlySpan<Vector<float>> vc = MemoryMarshal.Cast<float, Vector<float>>(c);
            Span<Vector<float>> vd = MemoryMarshal.Cast<float, Vector<float>>(destination);
            for (int v = 0; v < vd.Length; v++)
            {
                vd[v] = op.Invoke(va[v], vb[v], vc[v]);
            }

            i = vd.Length * Vector<float>.Count;
        }

        for (; i < destination.Length; i++)
        {
            destination[i] = op.Invoke(a[i], b[i], c[i]);
        }
    }

    public static void Apply<TOp>(TOp op, ReadOnlySpan<float> a, ReadOnlySpan<float> b, ReadOnlySpan<float> c, ReadOnlySpan<float> d, Span<float> destination)
        where TOp : struct, IElementwiseOp4
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            ReadOnlySpan<Vector<float>> va = MemoryMarshal.Cast<float, Vector<float>>(a);
            ReadOnlySpan<Vector<float>> vb = MemoryMarshal.Cast<float, Vector<float>>(b);
            ReadOnlySpan<Vector<float>> vc = MemoryMarshal.Cast<float, Vector<float>>(c);
            ReadOnlySpan<Vector<float>> vdd = MemoryMarshal.Cast<float, Vector<float>>(d);
            Span<Vector<float>> vd = MemoryMarshal.Cast<float, Vector<float>>(destination);
            for (int v = 0; v < vd.Length; v++)
            {
                vd[v] = op.Invoke(va[v], vb[v], vc[v], vdd[v]);
            }

            i = vd.Length * Vector<float>.Count;
        }

        for (; i < destination.Length; i++)
        {
            destination[i] = op.Invoke(a[i], b[i], c[i], d[i]);
        }
    }

    public static void Apply<TOp>(TOp op, ReadOnlySpan<float> a, ReadOnlySpan<float> b, ReadOnlySpan<float> c, ReadOnlySpan<float> d, ReadOnlySpan<float> e, Span<float> destination)
        where TOp : struct, IElementwiseOp5
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            ReadOnlySpan<Vector<float>> va = MemoryMarshal.Cast<float, Vector<float>>(a);
            ReadOnlySpan<Vector<float>> vb = MemoryMarshal.Cast<float, Vector<float>>(b);
            ReadOnlySpan<Vector<float>> vc = MemoryMarshal.Cast<float, Vector<float>>(c);
            ReadOnlySpan<Vector<float>> vdd = MemoryMarshal.Cast<float, Vector<float>>(d);
            ReadOnlySpan<Vector<float>> ve = MemoryMarshal.Cast<float, Vector<float>>(e);
            Span<Vector<float>> vd = MemoryMarshal.Cast<float, Vector<float>>(destination);
            for (int v = 0; v < vd.Length; v++)
            {
                vd[v] = op.Invoke(va[v], vb[v], vc[v], vdd[v], ve[v]);
            }

            i = vd.Length * Vector<float>.Count;
        }

        for (; i < destination.Length; i++)
        {
            destination[i] = op.Invoke(a[i], b[i], c[i], d[i], e[i]);
        }
    }

    /// <summary><c>dest = a·x + b·y</c>.</summary>
    public static void LinearCombination(float a, ReadOnlySpan<float> x, float b, ReadOnlySpan<float> y, Span<float> destination) =>
        Apply(new Combine2(a, b), x, y, destination);

    /// <summary><c>dest = (a·x + b·y) + c·z</c>.</summary>
    public static void LinearCombination(float a, ReadOnlySpan<float> x, float b, ReadOnlySpan<float> y, float c, ReadOnlySpan<float> z, Span<float> destination) =>
        Apply(new Combine3(a, b, c), x, y, z, destination);

    /// <summary><c>a·x + b·y</c>.</summary>
    private readonly struct Combine2(float a, float b) : IElementwiseOp2
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Invoke(float x, float y) => a * x + b * y;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Invoke(Vector<float> x, Vector<float> y) => a * x + b * y;
    }

    /// <summary><c>(a·x + b·y) + c·z</c>.</summary>
    private readonly struct Combine3(float a, float b, float c) : IElementwiseOp3
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Invoke(float x, float y, float z) => a * x + b * y + c * z;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Invoke(Vector<float> x, Vector<float> y, Vector<float> z) => a * x + b * y + c * z;
    }
}
