using System.Numerics.Tensors;
using Xunit;

namespace StableDiffusion.Schedulers.Tests.Schedulers;

/// <summary>
/// Every solver variant and sigma spacing runs a full loop to a finite result (diffusers' own suite checks these
/// combinations for NaN only; the trajectories of the common ones are checked against diffusers elsewhere).
/// </summary>
public sealed class ConfigurationMatrixTests
{
    public static TheoryData<string, string> Variants()
    {
        var data = new TheoryData<string, string>();
        foreach (string algorithm in new[] { "dpmsolver", "dpmsolver++", "sde-dpmsolver", "sde-dpmsolver++" })
        {
            foreach (string solverType in new[] { "midpoint", "heun" })
            {
                foreach (int order in new[] { 1, 2, 3 })
                {
                    foreach (string prediction in new[] { "epsilon", "sample", "v_prediction" })
                    {
                        string final = algorithm.EndsWith("++", StringComparison.Ordinal) ? "zero" : "sigma_min";
                        string json = $$"""{ "algorithm_type": "{{algorithm}}", "solver_type": "{{solverType}}", "solver_order": {{order}}, "prediction_type": "{{prediction}}", "final_sigmas_type": "{{final}}" }""";
                        if (!(algorithm == "sde-dpmsolver" && order == 3))
                        {
                            data.Add("DPMSolverMultistepScheduler", json);
                        }

                        if (algorithm != "sde-dpmsolver")
                        {
                            data.Add("DPMSolverSinglestepScheduler", json);
                        }
                    }
                }
            }
        }

        foreach (string solverType in new[] { "bh1", "bh2" })
        {
            foreach (int order in new[] { 1, 2, 3, 4 })
            {
                foreach (bool predictX0 in new[] { true, false })
                {
                    // Noise prediction needs a non-zero final sigma (see ConfigValidationTests).
                    string final = predictX0 ? "zero" : "sigma_min";
                    data.Add("UniPCMultistepScheduler", $$"""{ "solver_type": "{{solverType}}", "solver_order": {{order}}, "predict_x0": {{(predictX0 ? "true" : "false")}}, "final_sigmas_type": "{{final}}", "disable_corrector": [0] }""");
                }
            }
        }

        foreach (int order in new[] { 1, 2, 3 })
        {
            data.Add("DEISMultistepScheduler", $$"""{ "solver_order": {{order}}, "thresholding": true, "sample_max_value": 2.0 }""");
        }

        foreach (string spacing in new[] { "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas" })
        {
            foreach (string className in new[]
            {
                "EulerDiscreteScheduler", "LMSDiscreteScheduler", "HeunDiscreteScheduler", "KDPM2DiscreteScheduler", "KDPM2AncestralDiscreteScheduler",
                "DPMSolverMultistepScheduler", "DPMSolverSinglestepScheduler", "UniPCMultistepScheduler", "DEISMultistepScheduler",
            })
            {
                data.Add(className, $$"""{ "{{spacing}}": true, "sigma_min": 0.05, "sigma_max": 12.0 }""");
            }
        }

        data.Add("DPMSolverMultistepScheduler", """{ "use_lu_lambdas": true, "lambda_min_clipped": -5.1 }""");
        data.Add("DPMSolverMultistepScheduler", """{ "euler_at_final": true, "lower_order_final": false, "final_sigmas_type": "sigma_min" }""");
        data.Add("EulerDiscreteScheduler", """{ "interpolation_type": "log_linear" }""");
        data.Add("EulerDiscreteScheduler", """{ "prediction_type": "v_prediction", "timestep_type": "continuous" }""");
        data.Add("EulerDiscreteScheduler", """{ "rescale_betas_zero_snr": true, "prediction_type": "v_prediction", "timestep_spacing": "trailing" }""");
        data.Add("DDIMScheduler", """{ "rescale_betas_zero_snr": true, "prediction_type": "v_prediction", "timestep_spacing": "trailing" }""");
        data.Add("DDIMScheduler", """{ "thresholding": true, "dynamic_thresholding_ratio": 0.9, "sample_max_value": 1.5, "prediction_type": "sample" }""");
        data.Add("DDPMScheduler", """{ "variance_type": "fixed_small_log", "clip_sample": true }""");
        data.Add("DDPMScheduler", """{ "variance_type": "fixed_large", "beta_schedule": "sigmoid" }""");
        data.Add("DDPMScheduler", """{ "beta_schedule": "laplace", "timestep_spacing": "trailing" }""");
        data.Add("HeunDiscreteScheduler", """{ "beta_schedule": "exp", "clip_sample": true, "prediction_type": "sample" }""");
        data.Add("PNDMScheduler", """{ "beta_schedule": "squaredcos_cap_v2", "skip_prk_steps": false, "prediction_type": "v_prediction" }""");
        data.Add("LCMScheduler", """{ "thresholding": true, "prediction_type": "v_prediction" }""");
        data.Add("UniPCMultistepScheduler", """{ "thresholding": true, "prediction_type": "sample", "final_sigmas_type": "sigma_min", "use_karras_sigmas": true }""");
        return data;
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void FullLoop_StaysFinite(string className, string overrides)
    {
        DiffusionScheduler scheduler = SchedulerFactory.FromConfig(TestConfigs.StableDiffusion15With(className, overrides));
        scheduler.SetTimesteps(className == "LCMScheduler" ? 8 : 12);
        nint[] shape = [2, 4, 8, 8];
        var random = new Random(5);
        float[] sample = Enumerable.Range(0, 512).Select(_ => (float)(random.NextDouble() * 2 - 1) * scheduler.InitNoiseSigma).ToArray();

        DummyModel.Denoise(scheduler, sample, shape, new SchedulerStepOptions(new CountingGenerator()));

        Assert.All(sample, v => Assert.True(float.IsFinite(v), $"{className} {overrides}: {v}"));
    }

    [Fact]
    public void EulerChurn_IsReproducibleWithTheSameGenerator()
    {
        float[] first = RunEulerWithChurn(), second = RunEulerWithChurn();

        Assert.Equal(first, second);
    }

    private static float[] RunEulerWithChurn()
    {
        DiffusionScheduler euler = SchedulerFactory.Create("Euler", TestConfigs.StableDiffusion15);
        euler.SetTimesteps(10);
        nint[] shape = [1, 4, 8, 8];
        var generator = new CountingGenerator();
        var options = new SchedulerStepOptions(generator, SChurn: 0.5f, STMin: 0.1f, STMax: 10f, SNoise: 1.003f);
        float[] sample = Enumerable.Repeat(0.5f, 256).ToArray();
        var output = new float[256];
        foreach (float t in euler.Timesteps)
        {
            DummyModel.Evaluate(sample, t, output);
            euler.Step(new ReadOnlyTensorSpan<float>(output, shape), t, new ReadOnlyTensorSpan<float>(sample, shape), new TensorSpan<float>(sample, shape), options);
        }

        // Churn applies only where s_tmin ≤ σ ≤ s_tmax: the first step (σ = 14.6) and the last (σ = 0.029) draw nothing.
        Assert.Equal(8, generator.Draws);
        return sample;
    }
}
