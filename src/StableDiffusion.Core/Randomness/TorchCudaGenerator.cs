using System.Numerics;
using StableDiffusion.Schedulers;

namespace StableDiffusion.Randomness;

/// <summary>
/// Reproduces torch's CUDA generator on the CPU: <c>TorchCudaGenerator(seed)</c> draws what
/// <c>torch.randn(shape, generator=torch.Generator("cuda").manual_seed(seed), device="cuda")</c> draws, call after call,
/// so a seed a GPU user of diffusers shares gives the same image here, with or without a GPU.
/// </summary>
/// <remarks>
/// <para>
/// torch draws CUDA noise with Philox4x32-10 keyed by the seed (all 64 bits), one counter subsequence per GPU thread,
/// and cuRAND's Box-Muller transform; which thread draws which element follows torch's grid-stride kernel of 256-thread
/// blocks. The grid is as large as the draw needs (one element per thread) unless the GPU caps it at
/// <c>multi_processor_count × (max_threads_per_multi_processor / 256)</c> blocks; only draws larger than that cap depend on
/// the GPU. The parameterless-cap constructor assumes no cap, which is exact for every draw up to the GPU's cap: 270,336
/// elements on an H100/H200 or A100-class GPU, more than 16 SD 1.5 latents of 512×512. For larger draws, pass the GPU's
/// figures (<c>torch.cuda.get_device_properties(0)</c>).
/// </para>
/// <para>
/// Single precision uses cuRAND's fast <c>__sincosf</c> on the GPU, which this CPU version computes exactly, so values agree
/// to a few 1e-6, not bit for bit. Half precision is the single-precision draw rounded to half, as torch does on CUDA
/// (unlike on the CPU). Double precision uses cuRAND's double Box-Muller and agrees to about 1e-15. Not thread-safe.
/// </para>
/// </remarks>
public sealed class TorchCudaGenerator : INoiseGenerator
{
    private const int ThreadsPerBlock = 256;

    // torch advances the Philox offset by 4 (32-bit outputs) per curand call each thread makes in a draw.
    private const int OffsetPerCurandCall = 4;

    private const float TwoPow32Inverse = 2.3283064e-10f;
    private const float TwoPow32InverseTwoPi = 2.3283064e-10f * 6.2831855f;
    private const float InverseTwoPi = 0.15915494f;
    private const double TwoPow53Inverse = 1.1102230246251565e-16;

    // torch finishes every sample with `* std + mean` (std 1, mean 0): adding the mean turns a -0 into +0.
    private const float Mean = 0;

    private readonly long _maxThreads;
    private ulong _offset;

    /// <summary>Creates the generator as <c>torch.Generator("cuda").manual_seed(seed)</c> does, assuming the GPU never caps the grid.</summary>
    /// <param name="seed">The seed: any value torch accepts, 0 to 2^64-1.</param>
    public TorchCudaGenerator(ulong seed)
    {
        Seed = seed;
        _maxThreads = long.MaxValue;
    }

    /// <summary>Creates the generator for a given GPU, so that draws larger than its grid cap also match.</summary>
    /// <param name="seed">The seed: any value torch accepts, 0 to 2^64-1.</param>
    /// <param name="multiprocessorCount">The GPU's <c>multi_processor_count</c> (132 on an H100 SXM, 108 on an A100).</param>
    /// <param name="maxThreadsPerMultiprocessor">The GPU's <c>max_threads_per_multi_processor</c> (2048 on data-centre GPUs, 1536 on most consumer GPUs).</param>
    /// <exception cref="ArgumentOutOfRangeException">A figure is not positive, or fewer than 256 threads per multiprocessor.</exception>
    public TorchCudaGenerator(ulong seed, int multiprocessorCount, int maxThreadsPerMultiprocessor)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(multiprocessorCount);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxThreadsPerMultiprocessor, ThreadsPerBlock);
        Seed = seed;
        _maxThreads = (long)multiprocessorCount * (maxThreadsPerMultiprocessor / ThreadsPerBlock) * ThreadsPerBlock;
    }

    /// <summary>The seed this generator was created with.</summary>
    public ulong Seed { get; }

    /// <inheritdoc />
    public void FillStandardNormal(Span<float> destination) => FillSinglePrecision(destination);

    /// <inheritdoc />
    public void FillStandardNormal(Span<Half> destination) => FillSinglePrecision(destination);

    /// <inheritdoc />
    public void FillStandardNormal(Span<double> destination)
    {
        // curand_normal2_double: one 4-word block gives two values, the second for the element one grid stride further.
        (long threads, int rounds, ulong startBlock) = Plan(destination.Length, valuesPerCall: 2);
        for (long thread = 0; thread < threads; thread++)
        {
            Philox4x32.Block counter = Philox4x32.InitialCounter((ulong)thread, startBlock);
            for (int round = 0; round < rounds; round++, counter = Philox4x32.Advance(counter, 1))
            {
                long first = thread + (round * 2 * threads);
                if (first >= destination.Length)
                {
                    break;
                }

                Philox4x32.Block bits = Philox4x32.Generate(counter, Seed);
                (double sin, double cos) = BoxMullerDouble(bits);
                destination[(int)first] = sin;
                if (first + threads < destination.Length)
                {
                    destination[(int)(first + threads)] = cos;
                }
            }
        }
    }

    // Half precision is the single-precision value rounded to half (CreateTruncating from float is the (Half) cast).
    private void FillSinglePrecision<T>(Span<T> destination)
        where T : INumberBase<T>
    {
        // curand_normal4: one 4-word block gives four values, for elements one grid stride apart.
        (long threads, int rounds, ulong startBlock) = Plan(destination.Length, valuesPerCall: 4);
        for (long thread = 0; thread < threads; thread++)
        {
            Philox4x32.Block counter = Philox4x32.InitialCounter((ulong)thread, startBlock);
            for (int round = 0; round < rounds; round++, counter = Philox4x32.Advance(counter, 1))
            {
                long first = thread + (round * 4 * threads);
                if (first >= destination.Length)
                {
                    break;
                }

                Philox4x32.Block bits = Philox4x32.Generate(counter, Seed);
                (float n0, float n1) = BoxMullerSingle(bits.X, bits.Y);
                destination[(int)first] = T.CreateTruncating(n0);
                if (first + threads >= destination.Length)
                {
                    continue;
                }

                destination[(int)(first + threads)] = T.CreateTruncating(n1);
                if (first + (2 * threads) >= destination.Length)
                {
                    continue;
                }

                (float n2, float n3) = BoxMullerSingle(bits.Z, bits.W);
                destination[(int)(first + (2 * threads))] = T.CreateTruncating(n2);
                if (first + (3 * threads) < destination.Length)
                {
                    destination[(int)(first + (3 * threads))] = T.CreateTruncating(n3);
                }
            }
        }
    }

    /// <summary>
    /// torch's launch plan for a draw (<c>calc_execution_policy</c>): the threads of the grid, how many curand calls each
    /// makes, and the Philox offset (in 4-word blocks) the draw starts at; advances the generator past the draw.
    /// </summary>
    private (long Threads, int Rounds, ulong StartBlock) Plan(int count, int valuesPerCall)
    {
        if (count == 0)
        {
            return (0, 0, 0);
        }

        long blocks = (count + ThreadsPerBlock - 1L) / ThreadsPerBlock;
        long threads = Math.Min(blocks * ThreadsPerBlock, _maxThreads);
        int rounds = (int)(((count - 1L) / (threads * valuesPerCall)) + 1);
        ulong startBlock = _offset / 4;
        _offset += (ulong)rounds * OffsetPerCurandCall;
        return (threads, rounds, startBlock);
    }

    // cuRAND's _curand_box_muller: u in (0, 1] and v in (0, 2π] from two words, then the GPU's __sincosf.
    private static (float Sin, float Cos) BoxMullerSingle(uint x, uint y)
    {
        float u = (x * TwoPow32Inverse) + (TwoPow32Inverse / 2.0f);
        float v = MathF.FusedMultiplyAdd(y, TwoPow32InverseTwoPi, TwoPow32InverseTwoPi / 2.0f);
        float radius = MathF.Sqrt(-2.0f * MathF.Log(u));

        // __sincosf turns the angle into revolutions with a float multiply that rounds toward zero, then evaluates sin and
        // cos of those revolutions in hardware; the first step is reproduced exactly, the hardware step with exact math
        // (the GPU's approximation is what leaves the remaining ~1e-6 difference).
        double angle = 2.0 * Math.PI * MultiplyTowardZero(v, InverseTwoPi);
        (double sin, double cos) = Math.SinCos(angle);
        return (((float)sin * radius) + Mean, ((float)cos * radius) + Mean);
    }

    private static float MultiplyTowardZero(float a, float b)
    {
        double exact = (double)a * b;
        float rounded = (float)exact;
        return Math.Abs((double)rounded) > Math.Abs(exact) ? MathF.CopySign(MathF.BitDecrement(MathF.Abs(rounded)), rounded) : rounded;
    }

    // cuRAND's _curand_box_muller_double: 53-bit u in (0, 1] and v in (0, 2], then sincospi.
    private static (double Sin, double Cos) BoxMullerDouble(Philox4x32.Block bits)
    {
        ulong zx = bits.X ^ ((ulong)bits.Y << (53 - 32));
        ulong zy = bits.Z ^ ((ulong)bits.W << (53 - 32));
        double u = (zx * TwoPow53Inverse) + (TwoPow53Inverse / 2.0);
        double v = (zy * (TwoPow53Inverse * 2.0)) + TwoPow53Inverse;
        double radius = Math.Sqrt(-2.0 * Math.Log(u));
        return ((double.SinPi(v) * radius) + Mean, (double.CosPi(v) * radius) + Mean);
    }
}
