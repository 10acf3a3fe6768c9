using System.Diagnostics;
using System.Numerics.Tensors;
using StableDiffusion.Pipelines;

namespace StableDiffusion.Benchmarks;

/// <summary>
/// The stages after denoising on their own, on the pipeline's models, for one image of the benchmark's size: the VAE
/// decoder's <c>Decode</c> of random latents, the safety checker's CLIP pre-processing alone, and its whole <c>Check</c>
/// (pre-processing, conversions and the graph's run). Medians after warm-up; set against the generation's stage times
/// and a kernel profile, they tell host work from GPU work.
/// </summary>
internal static class BareStages
{
    private const int Warmup = 3;

    public static (double Decode, double Preprocess, double SafetyCheck) Measure(DiffusionPipeline pipe, BenchmarkOptions options)
    {
        var random = new Random(1);
        int latent = options.Size / 8;
        float[] latents = [.. Enumerable.Range(0, 4 * latent * latent).Select(_ => (random.NextSingle() * 2) - 1)];
        double decode = Median(options.BareCalls, () => pipe.VaeDecoder.Decode(new ReadOnlyTensorSpan<float>(latents, [1, 4, latent, latent])));
        if (pipe.SafetyChecker is not { } checker)
        {
            return (decode, 0, 0);
        }

        Tensor<float> image = Tensor.Create([.. Enumerable.Range(0, options.Size * options.Size * 3).Select(_ => random.NextSingle())], [1, options.Size, options.Size, 3]);
        return (decode, Median(options.BareCalls, () => checker.FeatureExtractor.Preprocess(image)), Median(options.BareCalls, () => checker.Check(image)));
    }

    private static double Median(int calls, Action call)
    {
        var times = new List<double>();
        for (int i = 0; i < calls + Warmup; i++)
        {
            long start = Stopwatch.GetTimestamp();
            call();
            if (i >= Warmup)
            {
                times.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }
        }

        return BenchmarkReport.MedianOf(times);
    }
}
