using System.Runtime.CompilerServices;

namespace StableDiffusion.Randomness;

/// <summary>
/// The Philox4x32-10 counter-based generator (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3"), as cuRAND
/// implements it for <c>curandStatePhilox4_32_10_t</c>: one call maps a 128-bit counter and a 64-bit key to four 32-bit words.
/// </summary>
/// <remarks>Written here because no .NET library exposes Philox with cuRAND's key and counter layout.</remarks>
internal static class Philox4x32
{
    private const uint MultiplierA = 0xD2511F53;
    private const uint MultiplierB = 0xCD9E8D57;
    private const uint WeylA = 0x9E3779B9;
    private const uint WeylB = 0xBB67AE85;

    /// <summary>Four 32-bit words: a counter or one output block.</summary>
    /// <param name="X">Word 0 (lowest).</param>
    /// <param name="Y">Word 1.</param>
    /// <param name="Z">Word 2.</param>
    /// <param name="W">Word 3 (highest).</param>
    internal readonly record struct Block(uint X, uint Y, uint Z, uint W);

    /// <summary>
    /// The counter cuRAND's <c>curand_init(seed, subsequence, offset)</c> starts from: the offset (in 32-bit outputs, a
    /// multiple of 4 here) counts up from the low words, the subsequence is added to the high 64 bits.
    /// </summary>
    /// <param name="subsequence">The thread's subsequence (its global thread index in torch's kernels).</param>
    /// <param name="offsetBlocks">The offset divided by 4: how many 4-word blocks to skip.</param>
    public static Block InitialCounter(ulong subsequence, ulong offsetBlocks) =>
        new((uint)offsetBlocks, (uint)(offsetBlocks >> 32), (uint)subsequence, (uint)(subsequence >> 32));

    /// <summary>The counter advanced by <paramref name="blocks"/> (128-bit addition).</summary>
    /// <param name="counter">The counter.</param>
    /// <param name="blocks">How many blocks to advance.</param>
    public static Block Advance(Block counter, ulong blocks)
    {
        ulong low = ((ulong)counter.Y << 32) | counter.X;
        ulong high = ((ulong)counter.W << 32) | counter.Z;
        ulong newLow = unchecked(low + blocks);
        if (newLow < low)
        {
            high = unchecked(high + 1);
        }

        return new((uint)newLow, (uint)(newLow >> 32), (uint)high, (uint)(high >> 32));
    }

    /// <summary>Ten Philox rounds: the output block for <paramref name="counter"/> under <paramref name="key"/>.</summary>
    /// <param name="counter">The 128-bit counter.</param>
    /// <param name="key">The 64-bit key (cuRAND takes the seed: low word first).</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Block Generate(Block counter, ulong key)
    {
        uint x = counter.X, y = counter.Y, z = counter.Z, w = counter.W;
        uint k0 = (uint)key, k1 = (uint)(key >> 32);
        for (int round = 0; round < 10; round++)
        {
            ulong productA = (ulong)MultiplierA * x;
            ulong productB = (ulong)MultiplierB * z;
            uint hiA = (uint)(productA >> 32), loA = (uint)productA;
            uint hiB = (uint)(productB >> 32), loB = (uint)productB;
            x = hiB ^ y ^ k0;
            y = loB;
            z = hiA ^ w ^ k1;
            w = loA;
            k0 = unchecked(k0 + WeylA);
            k1 = unchecked(k1 + WeylB);
        }

        return new(x, y, z, w);
    }
}
