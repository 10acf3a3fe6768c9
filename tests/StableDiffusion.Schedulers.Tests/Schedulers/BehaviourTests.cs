using System.Numerics.Tensors;
using Xunit;

namespace StableDiffusion.Schedulers.Tests.Schedulers;

/// <summary>The IScheduler contract across every scheduler: clones, in-place steps, add_noise, begin index, allocations.</summary>
public sealed class BehaviourTests
{
    private static readonly nint[] Shape = [2, 4, 8, 8];
    private const int Length = 2 * 4 * 8 * 8;

    [Theory]
    [MemberData(nameof(TestConfigs.UiNames), MemberType = typeof(TestConfigs))]
    public void Clone_StartsFromNoState(string name)
    {
        DiffusionScheduler used = SchedulerFactory.Create(name, TestConfigs.StableDiffusion15);
        used.SetTimesteps(8);
        Run(used, stopAfter: 3);

        DiffusionScheduler clone = used.Clone();
        DiffusionScheduler fresh = SchedulerFactory.Create(name, TestConfigs.StableDiffusion15);

        Assert.Equal(0, clone.NumInferenceSteps);
        Assert.Null(clone.StepIndex);
        clone.SetTimesteps(8);
        fresh.SetTimesteps(8);
        Assert.Equal(Run(fresh), Run(clone));
    }

    [Theory]
    [MemberData(nameof(TestConfigs.UiNames), MemberType = typeof(TestConfigs))]
    public void SetTimesteps_AgainStartsANewRun(string name)
    {
        DiffusionScheduler scheduler = SchedulerFactory.Create(name, TestConfigs.StableDiffusion15);
        scheduler.SetTimesteps(6);
        float[] first = Run(scheduler);

        scheduler.SetTimesteps(6);
        float[] second = Run(scheduler);

        Assert.Equal(first, second);
    }

    [Theory]
    [MemberData(nameof(TestConfigs.UiNames), MemberType = typeof(TestConfigs))]
    public void Step_InPlace_EqualsStepIntoAnotherBuffer(string name)
    {
        DiffusionScheduler inPlace = SchedulerFactory.Create(name, TestConfigs.StableDiffusion15);
        DiffusionScheduler separate = SchedulerFactory.Create(name, TestConfigs.StableDiffusion15);
        inPlace.SetTimesteps(8);
        separate.SetTimesteps(8);

        Assert.Equal(Run(inPlace), Run(separate, inPlace: false));
    }

    [Theory]
    [MemberData(nameof(TestConfigs.UiNames), MemberType = typeof(TestConfigs))]
    public void FullRun_FromStableDiffusion15_StaysFinite(string name)
    {
        DiffusionScheduler scheduler = SchedulerFactory.Create(name, TestConfigs.StableDiffusion15);
        scheduler.SetTimesteps(name == "LCM" ? 8 : 25);

        float[] result = Run(scheduler);

        Assert.All(result, v => Assert.True(float.IsFinite(v)));
        // The dummy model is no denoiser, so the sample drifts; it must not blow up.
        Assert.True(result.Max(Math.Abs) < 100, $"{name}: |x| reached {result.Max(Math.Abs)}.");
    }

    [Theory]
    [MemberData(nameof(TestConfigs.UiNames), MemberType = typeof(TestConfigs))]
    public void Step_InSteadyState_AllocatesNothing(string name)
    {
        DiffusionScheduler scheduler = SchedulerFactory.Create(name, TestConfigs.StableDiffusion15);
        scheduler.SetTimesteps(name == "LCM" ? 50 : 100);
        float[] sample = Latents(1);
        var output = new float[Length];
        var input = new float[Length];
        var options = new SchedulerStepOptions(new CountingGenerator());

        long allocated = 0;
        for (int i = 0; i < scheduler.Timesteps.Count; i++)
        {
            float t = scheduler.Timesteps[i];
            long before = GC.GetAllocatedBytesForCurrentThread();
            scheduler.ScaleModelInput(new ReadOnlyTensorSpan<float>(sample, Shape), t, new TensorSpan<float>(input, Shape));
            DummyModel.Evaluate(input, t, output);
            scheduler.Step(new ReadOnlyTensorSpan<float>(output, Shape), t, new ReadOnlyTensorSpan<float>(sample, Shape), new TensorSpan<float>(sample, Shape), options);
            if (i >= 8)
            {
                // The first steps allocate the solver's state buffers once.
                allocated += GC.GetAllocatedBytesForCurrentThread() - before;
            }
        }

        Assert.Equal(0, allocated);
    }

    [Theory]
    [InlineData("DDIM")]
    [InlineData("DDPM")]
    [InlineData("PLMS")]
    [InlineData("LCM")]
    public void AddNoise_DdpmFamily_IsSqrtAlphaBarMix(string name)
    {
        DiffusionScheduler scheduler = SchedulerFactory.Create(name, TestConfigs.StableDiffusion15);
        float[] original = Latents(1), noise = Latents(2), noised = new float[Length];

        scheduler.AddNoise(Span(original), Span(noise), 500, new TensorSpan<float>(noised, Shape));

        float alphaBar = scheduler.AlphasCumprod[500];
        for (int i = 0; i < Length; i++)
        {
            Assert.Equal(MathF.Sqrt(alphaBar) * original[i] + MathF.Sqrt(1 - alphaBar) * noise[i], noised[i], 1e-6f);
        }
    }

    [Theory]
    [InlineData("Euler")]
    [InlineData("Euler a")]
    [InlineData("LMS Karras")]
    [InlineData("Heun")]
    [InlineData("DPM2")]
    [InlineData("DPM2 a")]
    public void AddNoise_KDiffusionFamily_AddsSigmaTimesNoiseAtTheBeginIndex(string name)
    {
        DiffusionScheduler scheduler = SchedulerFactory.Create(name, TestConfigs.StableDiffusion15);
        scheduler.SetTimesteps(10);
        int begin = 3 * scheduler.Order;
        scheduler.SetBeginIndex(begin);
        float[] original = Latents(1), noise = Latents(2), noised = new float[Length];

        scheduler.AddNoise(Span(original), Span(noise), scheduler.Timesteps[begin], new TensorSpan<float>(noised, Shape));

        float sigma = scheduler.Sigmas[begin];
        for (int i = 0; i < Length; i++)
        {
            Assert.Equal(original[i] + noise[i] * sigma, noised[i], 1e-6f);
        }
    }

    [Theory]
    [InlineData("DPM++ 2M")]
    [InlineData("DPM++ 2S")]
    [InlineData("UniPC")]
    [InlineData("DEIS")]
    public void AddNoise_DpmSolverFamily_UsesAlphaAndSigmaOfTheStep(string name)
    {
        DiffusionScheduler scheduler = SchedulerFactory.Create(name, TestConfigs.StableDiffusion15);
        scheduler.SetTimesteps(10);
        float[] original = Latents(1), noise = Latents(2), noised = new float[Length];

        scheduler.AddNoise(Span(original), Span(noise), scheduler.Timesteps[4], new TensorSpan<float>(noised, Shape));

        float sigma = scheduler.Sigmas[4];
        float alpha = 1 / MathF.Sqrt(sigma * sigma + 1);
        for (int i = 0; i < Length; i++)
        {
            Assert.Equal(alpha * original[i] + alpha * sigma * noise[i], noised[i], 1e-6f);
        }
    }

    [Theory]
    [InlineData("Euler")]
    [InlineData("Heun")]
    [InlineData("DPM2")]
    [InlineData("DPM++ 2M Karras")]
    [InlineData("UniPC")]
    public void SetBeginIndex_StartsTheLoopThere(string name)
    {
        // Image-to-image: timesteps[begin:], sample noised to the first of them; the scheduler must use the sigma at begin.
        DiffusionScheduler scheduler = SchedulerFactory.Create(name, TestConfigs.StableDiffusion15);
        scheduler.SetTimesteps(10);
        int begin = 4 * scheduler.Order;
        scheduler.SetBeginIndex(begin);
        float[] sample = Latents(1);
        var input = new float[Length];

        scheduler.ScaleModelInput(Span(sample), scheduler.Timesteps[begin], new TensorSpan<float>(input, Shape));
        if (scheduler.InitNoiseSigma > 1)
        {
            // k-diffusion schedulers scale the input by the sigma at the begin index.
            float sigma = scheduler.Sigmas[begin];
            Assert.Equal(begin, scheduler.StepIndex);
            Assert.Equal(sample[5] / MathF.Sqrt(sigma * sigma + 1), input[5], 1e-6f);
        }

        float[] result = Run(scheduler, start: begin, sample: sample, stopAfter: 1);

        Assert.Equal(begin + 1, scheduler.StepIndex);
        Assert.All(result, v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void TensorExtensions_AllocateTheOutput()
    {
        DiffusionScheduler scheduler = SchedulerFactory.Create("Euler", TestConfigs.StableDiffusion15);
        scheduler.SetTimesteps(10);
        Tensor<float> sample = System.Numerics.Tensors.Tensor.Create(Latents(1), Shape);
        var reference = SchedulerFactory.Create("Euler", TestConfigs.StableDiffusion15);
        reference.SetTimesteps(10);
        float[] expected = Latents(1);
        var modelOutput = new float[Length];
        var input = new float[Length];

        Tensor<float> scaled = scheduler.ScaleModelInput(sample, scheduler.Timesteps[0]);
        Tensor<float> previous = scheduler.Step(scaled, scheduler.Timesteps[0], sample);
        reference.ScaleModelInput(Span(expected), reference.Timesteps[0], new TensorSpan<float>(input, Shape));
        reference.Step(Span(input), reference.Timesteps[0], Span(expected), new TensorSpan<float>(expected, Shape));

        Assert.Equal(Shape, previous.Lengths.ToArray());
        Assert.Equal(expected, previous.ToArray());
    }

    private static float[] Run(DiffusionScheduler scheduler, int start = 0, float[]? sample = null, int stopAfter = int.MaxValue, bool inPlace = true)
    {
        sample ??= Latents(1);
        if (start == 0)
        {
            TensorPrimitives.Multiply(sample, scheduler.InitNoiseSigma, sample);
        }

        var input = new float[Length];
        var output = new float[Length];
        var next = new float[Length];
        var options = new SchedulerStepOptions(new CountingGenerator(), Eta: 0.5f);
        for (int i = start; i < scheduler.Timesteps.Count && i - start < stopAfter; i++)
        {
            float t = scheduler.Timesteps[i];
            scheduler.ScaleModelInput(Span(sample), t, new TensorSpan<float>(input, Shape));
            DummyModel.Evaluate(input, t, output);
            if (inPlace)
            {
                scheduler.Step(Span(output), t, Span(sample), new TensorSpan<float>(sample, Shape), options);
            }
            else
            {
                scheduler.Step(Span(output), t, Span(sample), new TensorSpan<float>(next, Shape), options);
                next.CopyTo(sample, 0);
            }
        }

        return sample;
    }

    private static float[] Latents(int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, Length).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
    }

    private static ReadOnlyTensorSpan<float> Span(float[] values) => new(values, Shape);
}
