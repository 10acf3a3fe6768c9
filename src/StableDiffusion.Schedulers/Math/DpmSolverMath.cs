using System.Numerics;
using System.Runtime.CompilerServices;

namespace StableDiffusion.Schedulers;

/// <summary>
/// The DPM-Solver update coefficients shared by the multistep and singlestep schedulers (Lu et al., DPM-Solver and
/// DPM-Solver++), in diffusers' float32 arithmetic. A point of the schedule is (α, σ, λ = log α − log σ) for
/// α = 1/√(s² + 1), σ = s·α at the k-diffusion sigma s.
/// </summary>
internal static class DpmSolverMath
{
    /// <summary>The variance-preserving α, σ and log-SNR λ of a k-diffusion sigma.</summary>
    public static Point At(float sigma)
    {
        float alpha = 1f / MathF.Sqrt(sigma * sigma + 1f);
        float sigmaT = sigma * alpha;
        return new Point(alpha, sigmaT, MathF.Log(alpha) - MathF.Log(sigmaT));
    }

    /// <summary>
    /// The first-order update x_t = X·x + M·m + N·z from the point s to the point t, m being the converted model output
    /// (x₀ for the ++ variants, ε otherwise).
    /// </summary>
    public static Coefficients FirstOrder(DpmSolverAlgorithmType algorithm, Point t, Point s)
    {
        float h = t.Lambda - s.Lambda;
        return algorithm switch
        {
            DpmSolverAlgorithmType.DpmSolverPlusPlus => new(t.Sigma / s.Sigma, -(t.Alpha * (MathF.Exp(-h) - 1f)), 0, 0, 0),
            DpmSolverAlgorithmType.DpmSolver => new(t.Alpha / s.Alpha, -(t.Sigma * (MathF.Exp(h) - 1f)), 0, 0, 0),
            DpmSolverAlgorithmType.SdeDpmSolverPlusPlus => new(
                t.Sigma / s.Sigma * MathF.Exp(-h), t.Alpha * (1f - MathF.Exp(-2f * h)), 0, 0, t.Sigma * MathF.Sqrt(1f - MathF.Exp(-2f * h))),
            _ => new(t.Alpha / s.Alpha, -(2f * (t.Sigma * (MathF.Exp(h) - 1f))), 0, 0, t.Sigma * MathF.Sqrt(MathF.Exp(2f * h) - 1f)),
        };
    }

    /// <summary>
    /// The second-order update x_t = X·x + D0·D₀ + D1·D₁ + N·z, x being the sample at <paramref name="reference"/> and
    /// h = λ_t − λ_reference (the multistep solver refers to the current point, the singlestep one to the previous).
    /// </summary>
    public static Coefficients SecondOrder(DpmSolverAlgorithmType algorithm, DpmSolverType solverType, Point t, Point reference, float h)
    {
        bool midpoint = solverType == DpmSolverType.Midpoint;
        switch (algorithm)
        {
            case DpmSolverAlgorithmType.DpmSolverPlusPlus:
            {
                float c = t.Alpha * (MathF.Exp(-h) - 1f);
                return new(t.Sigma / reference.Sigma, -c, midpoint ? -(0.5f * c) : t.Alpha * ((MathF.Exp(-h) - 1f) / h + 1f), 0, 0);
            }

            case DpmSolverAlgorithmType.DpmSolver:
            {
                float c = t.Sigma * (MathF.Exp(h) - 1f);
                return new(t.Alpha / reference.Alpha, -c, midpoint ? -(0.5f * c) : -(t.Sigma * ((MathF.Exp(h) - 1f) / h - 1f)), 0, 0);
            }

            case DpmSolverAlgorithmType.SdeDpmSolverPlusPlus:
            {
                float c = t.Alpha * (1f - MathF.Exp(-2f * h));
                return new(
                    t.Sigma / reference.Sigma * MathF.Exp(-h),
                    c,
                    midpoint ? 0.5f * c : t.Alpha * ((1f - MathF.Exp(-2f * h)) / (-2f * h) + 1f),
                    0,
                    t.Sigma * MathF.Sqrt(1f - MathF.Exp(-2f * h)));
            }

            default:
            {
                float c = t.Sigma * (MathF.Exp(h) - 1f);
                return new(
                    t.Alpha / reference.Alpha,
                    -(2f * c),
                    midpoint ? -c : -(2f * (t.Sigma * ((MathF.Exp(h) - 1f) / h - 1f))),
                    0,
                    t.Sigma * MathF.Sqrt(MathF.Exp(2f * h) - 1f));
            }
        }
    }

    /// <summary>The third-order update x_t = X·x + D0·D₀ + D1·D₁ + D2·D₂ + N·z (not defined for the SDE variant of DPM-Solver).</summary>
    public static Coefficients ThirdOrder(DpmSolverAlgorithmType algorithm, Point t, Point reference, float h) => algorithm switch
    {
        DpmSolverAlgorithmType.DpmSolverPlusPlus => new(
            t.Sigma / reference.Sigma,
            -(t.Alpha * (MathF.Exp(-h) - 1f)),
            t.Alpha * ((MathF.Exp(-h) - 1f) / h + 1f),
            -(t.Alpha * ((MathF.Exp(-h) - 1f + h) / (h * h) - 0.5f)),
            0),
        DpmSolverAlgorithmType.DpmSolver => new(
            t.Alpha / reference.Alpha,
            -(t.Sigma * (MathF.Exp(h) - 1f)),
            -(t.Sigma * ((MathF.Exp(h) - 1f) / h - 1f)),
            -(t.Sigma * ((MathF.Exp(h) - 1f - h) / (h * h) - 0.5f)),
            0),
        DpmSolverAlgorithmType.SdeDpmSolverPlusPlus => new(
            t.Sigma / reference.Sigma * MathF.Exp(-h),
            t.Alpha * (1f - MathF.Exp(-2f * h)),
            t.Alpha * ((1f - MathF.Exp(-2f * h)) / (-2f * h) + 1f),
            t.Alpha * ((1f - MathF.Exp(-2f * h) - 2f * h) / ((2f * h) * (2f * h)) - 0.5f),
            t.Sigma * MathF.Sqrt(1f - MathF.Exp(-2f * h))),
        _ => throw new InvalidOperationException("diffusers has no third-order update for sde-dpmsolver."),
    };

    /// <summary>A point of the schedule in the variance-preserving parameterisation.</summary>
    internal readonly record struct Point(float Alpha, float Sigma, float Lambda);

    /// <summary>The coefficients of the sample, the D terms and the noise in one update.</summary>
    internal readonly record struct Coefficients(float X, float D0, float D1, float D2, float Noise);

    /// <summary>x_t = X·x + D0·d0 + D1·(k·(a − b)) + N·z.</summary>
    internal readonly struct SecondOrderUpdate(Coefficients c, float k) : IElementwiseOp5
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Invoke(float x, float d0, float a, float b, float z) => c.X * x + c.D0 * d0 + c.D1 * (k * (a - b)) + c.Noise * z;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Invoke(Vector<float> x, Vector<float> d0, Vector<float> a, Vector<float> b, Vector<float> z) =>
            c.X * x + c.D0 * d0 + c.D1 * (k * (a - b)) + c.Noise * z;
    }
}
