namespace StableDiffusion.Schedulers;

/// <summary>
/// DPM-Solver's <c>convert_model_output</c>: the data prediction x₀ for the ++ variants (optionally thresholded), the
/// noise prediction ε for the others.
/// </summary>
internal static class DpmSolverModelOutput
{
    public static void Convert(
        DpmSolverAlgorithmType algorithm,
        PredictionType predictionType,
        DpmSolverMath.Point point,
        ReadOnlySpan<float> sample,
        ReadOnlySpan<float> modelOutput,
        Span<float> destination,
        bool thresholding,
        double ratio,
        double sampleMaxValue,
        int batchSize,
        ref float[]? scratch)
    {
        if (algorithm is DpmSolverAlgorithmType.DpmSolverPlusPlus or DpmSolverAlgorithmType.SdeDpmSolverPlusPlus)
        {
            Prediction.VpOriginalSample(predictionType, point.Alpha, point.Sigma, sample, modelOutput, destination);
            if (thresholding)
            {
                SampleClipping.Threshold(destination, batchSize, ratio, sampleMaxValue, Scratch(ref scratch, sample.Length));
            }

            return;
        }

        Prediction.VpEpsilon(predictionType, point.Alpha, point.Sigma, sample, modelOutput, destination);
        if (thresholding)
        {
            // ε → x₀, threshold, → ε.
            float[] originalSample = Scratch(ref scratch, 2 * sample.Length);
            Span<float> x0 = originalSample.AsSpan(0, sample.Length);
            Elementwise.Apply(new Prediction.SubtractScaledThenDivide(point.Sigma, point.Alpha), sample, destination, x0);
            SampleClipping.Threshold(x0, batchSize, ratio, sampleMaxValue, originalSample.AsSpan(sample.Length));
            Elementwise.Apply(new Prediction.SubtractScaledThenDivide(point.Alpha, point.Sigma), sample, x0, destination);
        }
    }

    private static float[] Scratch(ref float[]? buffer, int length)
    {
        if (buffer is null || buffer.Length < length)
        {
            buffer = new float[length];
        }

        return buffer;
    }
}
