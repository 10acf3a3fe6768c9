namespace StableDiffusion.Schedulers;

/// <summary>
/// The inference timesteps for each <see cref="TimestepSpacing"/>, in the three variants diffusers' schedulers use
/// (numpy float64 arithmetic throughout; all lists are in denoising order, largest timestep first).
/// </summary>
internal static class TimestepSchedules
{
    /// <summary>
    /// Integer timesteps of the DDPM family (DDIM, DDPM, PNDM): linspace rounded, leading <c>i·(T // N) + offset</c>,
    /// trailing <c>round(arange(T, 0, −T/N)) − 1</c>.
    /// </summary>
    public static long[] Discrete(TimestepSpacing spacing, int trainTimesteps, int steps, int stepsOffset) => spacing switch
    {
        TimestepSpacing.Linspace => Reverse(NumpyCompat.Linspace(0, trainTimesteps - 1, steps).Select(t => (long)NumpyCompat.Round(t))),
        TimestepSpacing.Leading => Reverse(Enumerable.Range(0, steps).Select(i => (long)i * (trainTimesteps / steps) + stepsOffset)),
        TimestepSpacing.Trailing => Trailing(trainTimesteps, trainTimesteps, steps),
        _ => throw new ArgumentOutOfRangeException(nameof(spacing), spacing, null),
    };

    /// <summary>
    /// Float32 timesteps of the k-diffusion family (Euler, Euler ancestral, LMS, Heun, KDPM2): as <see cref="Discrete"/>
    /// but linspace is not rounded, so the timesteps can be fractional.
    /// </summary>
    public static float[] Continuous(TimestepSpacing spacing, int trainTimesteps, int steps, int stepsOffset) => spacing switch
    {
        TimestepSpacing.Linspace => NumpyCompat.Linspace(0, trainTimesteps - 1, steps).Select(t => (float)t).Reverse().ToArray(),
        // numpy adds the offset to the float32 array.
        TimestepSpacing.Leading => Enumerable.Range(0, steps).Reverse().Select(i => (float)((long)i * (trainTimesteps / steps)) + stepsOffset).ToArray(),
        TimestepSpacing.Trailing => Trailing(trainTimesteps, trainTimesteps, steps).Select(t => (float)t).ToArray(),
        _ => throw new ArgumentOutOfRangeException(nameof(spacing), spacing, null),
    };

    /// <summary>
    /// Integer timesteps of the multistep solvers (DPM-Solver, UniPC, DEIS), which space N + 1 points and drop the last:
    /// linspace <c>round(linspace(0, last − 1, N + 1))</c>, leading <c>i·(last // (N + 1)) + offset</c>, trailing
    /// <c>round(arange(last, 0, −T/N)) − 1</c>.
    /// </summary>
    /// <param name="spacing">The spacing.</param>
    /// <param name="trainTimesteps">T, the number of training timesteps.</param>
    /// <param name="lastTimestep">The end of the range (T, or less when DPM-Solver clips small log-SNRs).</param>
    /// <param name="steps">N, the number of inference steps.</param>
    /// <param name="stepsOffset">The offset of leading spacing.</param>
    public static long[] Solver(TimestepSpacing spacing, int trainTimesteps, int lastTimestep, int steps, int stepsOffset) => spacing switch
    {
        TimestepSpacing.Linspace => NumpyCompat.Linspace(0, lastTimestep - 1, steps + 1).Select(t => (long)NumpyCompat.Round(t)).Reverse().Take(steps).ToArray(),
        TimestepSpacing.Leading => Enumerable.Range(1, steps).Reverse().Select(i => (long)i * (lastTimestep / (steps + 1)) + stepsOffset).ToArray(),
        TimestepSpacing.Trailing => Trailing(lastTimestep, trainTimesteps, steps),
        _ => throw new ArgumentOutOfRangeException(nameof(spacing), spacing, null),
    };

    // round(arange(start, 0, −T/N)) − 1. numpy's length rule can give one element more than N for some N (the extra one
    // is −1); diffusers keeps it, so this does too and the schedulers that index tables by timestep reject it.
    private static long[] Trailing(int start, int trainTimesteps, int steps) =>
        NumpyCompat.Arange(start, 0, -((double)trainTimesteps / steps)).Select(t => (long)NumpyCompat.Round(t) - 1).ToArray();

    private static long[] Reverse(IEnumerable<long> ascending) => ascending.Reverse().ToArray();
}
