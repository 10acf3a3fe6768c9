using System.Globalization;

namespace StableDiffusion.Core.Tests.Hardening.Drills;

/// <summary>A sampled series summed up: its ends, extremes and least-squares slope per unit of x.</summary>
/// <param name="Count">The number of samples.</param>
/// <param name="First">The first value.</param>
/// <param name="Last">The last value.</param>
/// <param name="Min">The smallest value.</param>
/// <param name="Max">The largest value.</param>
/// <param name="Slope">The least-squares slope of value over x (per generation, say).</param>
public sealed record SeriesSummary(int Count, double First, double Last, double Min, double Max, double Slope)
{
    /// <summary>Summarises (x, value) samples.</summary>
    /// <param name="samples">The samples, in x order.</param>
    public static SeriesSummary Of(IReadOnlyList<(double X, double Value)> samples)
    {
        ArgumentNullException.ThrowIfNull(samples);
        if (samples.Count == 0)
        {
            throw new ArgumentException("No samples.", nameof(samples));
        }

        double meanX = samples.Average(s => s.X), meanY = samples.Average(s => s.Value);
        double covariance = samples.Sum(s => (s.X - meanX) * (s.Value - meanY));
        double variance = samples.Sum(s => (s.X - meanX) * (s.X - meanX));
        return new SeriesSummary(samples.Count, samples[0].Value, samples[^1].Value, samples.Min(s => s.Value), samples.Max(s => s.Value),
            variance == 0 ? 0 : covariance / variance);
    }

    /// <summary>The summary in mebibytes, for byte series.</summary>
    public string ToMebibytes() => string.Create(CultureInfo.InvariantCulture,
        $"first {First / Mebibyte:F1} MiB, last {Last / Mebibyte:F1} MiB, min {Min / Mebibyte:F1} MiB, max {Max / Mebibyte:F1} MiB, slope {Slope / 1024:F2} KiB per step ({Count} samples)");

    private const double Mebibyte = 1024 * 1024;
}

/// <summary>Latencies summed up: median, 95th percentile and maximum.</summary>
/// <param name="Count">The number of latencies.</param>
/// <param name="Median">The median.</param>
/// <param name="P95">The 95th percentile (nearest rank).</param>
/// <param name="Max">The largest.</param>
public sealed record LatencySummary(int Count, TimeSpan Median, TimeSpan P95, TimeSpan Max)
{
    /// <summary>Summarises latencies.</summary>
    /// <param name="latencies">The latencies, in any order.</param>
    public static LatencySummary Of(IEnumerable<TimeSpan> latencies)
    {
        TimeSpan[] sorted = [.. latencies.Order()];
        if (sorted.Length == 0)
        {
            return new LatencySummary(0, TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero);
        }

        return new LatencySummary(sorted.Length, Rank(sorted, 0.5), Rank(sorted, 0.95), sorted[^1]);
    }

    /// <summary>The summary in milliseconds.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"n = {Count}, median {Median.TotalMilliseconds:F2} ms, p95 {P95.TotalMilliseconds:F2} ms, max {Max.TotalMilliseconds:F2} ms");

    private static TimeSpan Rank(TimeSpan[] sorted, double quantile) => sorted[Math.Clamp((int)Math.Ceiling(quantile * sorted.Length) - 1, 0, sorted.Length - 1)];
}
