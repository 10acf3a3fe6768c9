namespace StableDiffusion.Randomness;

/// <summary>
/// The 32-bit Mersenne Twister (MT19937) with the reference <c>init_genrand</c> seeding: the engine behind torch's CPU
/// generator and numpy's legacy <c>RandomState</c>, so both streams start from the same words for a 32-bit seed.
/// </summary>
/// <remarks>Written here because no .NET library exposes MT19937 with this exact seeding and output order.</remarks>
internal sealed class MersenneTwister
{
    private const int N = 624;
    private const int M = 397;
    private const uint MatrixA = 0x9908b0df;
    private const uint UpperMask = 0x80000000;
    private const uint LowerMask = 0x7fffffff;

    private readonly uint[] _state = new uint[N];
    private int _index;

    /// <summary>Seeds the engine with the reference initialisation (<c>init_genrand</c>).</summary>
    /// <param name="seed">The 32-bit seed.</param>
    public MersenneTwister(uint seed)
    {
        _state[0] = seed;
        for (int i = 1; i < N; i++)
        {
            _state[i] = unchecked((1812433253u * (_state[i - 1] ^ (_state[i - 1] >> 30))) + (uint)i);
        }

        _index = N;
    }

    /// <summary>The next 32-bit output.</summary>
    public uint NextUInt32()
    {
        if (_index >= N)
        {
            Twist();
        }

        uint y = _state[_index++];
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c5680;
        y ^= (y << 15) & 0xefc60000;
        y ^= y >> 18;
        return y;
    }

    private void Twist()
    {
        // The reference recurrence, split at the wrap-around points so the hot loop needs no modulo.
        int k = 0;
        for (; k < N - M; k++)
        {
            _state[k] = _state[k + M] ^ Mix(_state[k], _state[k + 1]);
        }

        for (; k < N - 1; k++)
        {
            _state[k] = _state[k + M - N] ^ Mix(_state[k], _state[k + 1]);
        }

        _state[N - 1] = _state[M - 1] ^ Mix(_state[N - 1], _state[0]);
        _index = 0;
    }

    private static uint Mix(uint current, uint next)
    {
        uint y = (current & UpperMask) | (next & LowerMask);
        return (y >> 1) ^ ((y & 1) != 0 ? MatrixA : 0u);
    }
}
