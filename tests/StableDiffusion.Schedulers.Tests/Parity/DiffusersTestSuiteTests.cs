using System.Numerics.Tensors;
using System.Text.Json.Nodes;
using StableDiffusion.Randomness;
using Xunit;

namespace StableDiffusion.Schedulers.Tests.Parity;

/// <summary>
/// The full-loop checks of diffusers' own scheduler test suite (tests/schedulers/test_scheduler_*.py at the reference's
/// commit), re-run here: the same configurations, loops, deterministic sample and model, and the expected sums and means of
/// |sample| with diffusers' tolerances. They cover what the reference cases do not: Karras sigmas for every class,
/// v-prediction, thresholding, clipping, Runge-Kutta PNDM, Lu lambdas, scheduler swaps, image-to-image starts (add_noise
/// at a later timestep) and 1,000-step DDPM.
/// </summary>
/// <remarks>
/// diffusers sums in float32 in its own order; for sums above 1,000 the tolerance is widened to 1e-6 relative, a few
/// float32 ulps of the sum, since the summation order cannot be reproduced.
/// </remarks>
public sealed class DiffusersTestSuiteTests
{
    private const string Ddim = """{ "num_train_timesteps": 1000, "beta_start": 0.0001, "beta_end": 0.02, "beta_schedule": "linear", "clip_sample": true }""";
    private const string Ddpm = """{ "num_train_timesteps": 1000, "beta_start": 0.0001, "beta_end": 0.02, "beta_schedule": "linear", "variance_type": "fixed_small", "clip_sample": true }""";
    private const string Pndm = """{ "num_train_timesteps": 1000, "beta_start": 0.0001, "beta_end": 0.02, "beta_schedule": "linear" }""";
    private const string Lcm = """{ "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "prediction_type": "epsilon" }""";
    private const string KDiffusion = """{ "num_train_timesteps": 1100, "beta_start": 0.0001, "beta_end": 0.02, "beta_schedule": "linear" }""";
    private const string DpmMultistep = """
        { "num_train_timesteps": 1000, "beta_start": 0.0001, "beta_end": 0.02, "beta_schedule": "linear", "solver_order": 2,
          "prediction_type": "epsilon", "thresholding": false, "sample_max_value": 1.0, "algorithm_type": "dpmsolver++",
          "solver_type": "midpoint", "lower_order_final": false, "euler_at_final": false, "lambda_min_clipped": -Infinity,
          "variance_type": null, "final_sigmas_type": "sigma_min" }
        """;
    private const string DpmSinglestep = """
        { "num_train_timesteps": 1000, "beta_start": 0.0001, "beta_end": 0.02, "beta_schedule": "linear", "solver_order": 2,
          "prediction_type": "epsilon", "thresholding": false, "sample_max_value": 1.0, "algorithm_type": "dpmsolver++",
          "solver_type": "midpoint", "lambda_min_clipped": -Infinity, "variance_type": null, "final_sigmas_type": "sigma_min" }
        """;
    private const string Deis = """{ "num_train_timesteps": 1000, "beta_start": 0.0001, "beta_end": 0.02, "beta_schedule": "linear", "solver_order": 2 }""";
    private const string UniPC = """{ "num_train_timesteps": 1000, "beta_start": 0.0001, "beta_end": 0.02, "beta_schedule": "linear", "solver_order": 2, "solver_type": "bh2", "final_sigmas_type": "sigma_min" }""";

    private static readonly int[] Image = [4, 3, 8, 8];
    private static readonly int[] Signal = [4, 3, 8];

    private static readonly LoopCase[] AllCases =
    [
        // test_scheduler_ddim.py: step(residual, t, sample, eta=0).
        new("ddim/no_noise", "DDIMScheduler", Ddim, "{}", Steps: 10, Sum: (172.0067, 0.01), Mean: (0.223967, 0.001)),
        new("ddim/v_prediction", "DDIMScheduler", Ddim, """{ "prediction_type": "v_prediction" }""", Steps: 10, Sum: (52.5302, 0.01), Mean: (0.0684, 0.001)),
        new("ddim/set_alpha_to_one", "DDIMScheduler", Ddim, """{ "set_alpha_to_one": true, "beta_start": 0.01 }""", Steps: 10, Sum: (149.8295, 0.01), Mean: (0.1951, 0.001)),
        new("ddim/no_set_alpha_to_one", "DDIMScheduler", Ddim, """{ "set_alpha_to_one": false, "beta_start": 0.01 }""", Steps: 10, Sum: (149.0784, 0.01), Mean: (0.1941, 0.001)),
        new("ddim/with_noise", "DDIMScheduler", Ddim, "{}", Steps: 10, NoiseStart: 8, Sum: (354.5418, 0.01), Mean: (0.4616, 0.001)),

        // test_scheduler_ddpm.py: every training timestep, torch.manual_seed(0).
        new("ddpm/no_noise", "DDPMScheduler", Ddpm, "{}", Steps: 1000, Seed: 0, Sum: (258.9606, 0.01), Mean: (0.3372, 0.001)),
        new("ddpm/v_prediction", "DDPMScheduler", Ddpm, """{ "prediction_type": "v_prediction" }""", Steps: 1000, Seed: 0, Sum: (202.0296, 0.01), Mean: (0.2631, 0.001)),
        new("ddpm/with_noise", "DDPMScheduler", Ddpm, "{}", Steps: 1000, Seed: 0, NoiseStart: 998, Sum: (387.9466, 0.01), Mean: (0.5051, 0.001)),

        // test_scheduler_pndm.py: the 12 Runge-Kutta steps, then the multistep ones.
        new("pndm/no_noise", "PNDMScheduler", Pndm, "{}", Steps: 10, Sum: (198.1318, 0.01), Mean: (0.258, 0.001)),
        new("pndm/v_prediction", "PNDMScheduler", Pndm, """{ "prediction_type": "v_prediction" }""", Steps: 10, Sum: (67.3986, 0.01), Mean: (0.0878, 0.001)),
        new("pndm/set_alpha_to_one", "PNDMScheduler", Pndm, """{ "set_alpha_to_one": true, "beta_start": 0.01 }""", Steps: 10, Sum: (230.0399, 0.01), Mean: (0.2995, 0.001)),
        new("pndm/no_set_alpha_to_one", "PNDMScheduler", Pndm, """{ "set_alpha_to_one": false, "beta_start": 0.01 }""", Steps: 10, Sum: (186.9482, 0.01), Mean: (0.2434, 0.001)),

        // test_scheduler_lcm.py: torch.manual_seed(0).
        new("lcm/onestep", "LCMScheduler", Lcm, "{}", Steps: 1, Seed: 0, Sum: (18.7097, 0.001), Mean: (0.0244, 0.001)),
        new("lcm/multistep", "LCMScheduler", Lcm, "{}", Steps: 10, Seed: 0, Sum: (197.7616, 0.001), Mean: (0.2575, 0.001)),

        // test_scheduler_euler.py and the other k-diffusion suites: the tests pass the scaled model input to step.
        new("euler/no_noise", "EulerDiscreteScheduler", KDiffusion, "{}", Steps: 10, Seed: 0, ScaledSampleToStep: true, Sum: (10.0807, 0.01), Mean: (0.0131, 0.001)),
        new("euler/v_prediction", "EulerDiscreteScheduler", KDiffusion, """{ "prediction_type": "v_prediction" }""", Steps: 10, Seed: 0, ScaledSampleToStep: true, Sum: (0.0002, 0.01), Mean: (2.2676e-06, 0.001)),
        new("euler/karras", "EulerDiscreteScheduler", KDiffusion, """{ "use_karras_sigmas": true }""", Steps: 10, Seed: 0, ScaledSampleToStep: true, Sum: (124.52299499511719, 0.01), Mean: (0.16213932633399963, 0.001)),
        new("euler/with_noise", "EulerDiscreteScheduler", KDiffusion, "{}", Steps: 10, Seed: 0, ScaledSampleToStep: true, NoiseStart: 8, Sum: (57062.9297, 0.01), Mean: (74.3007, 0.001)),
        new("euler_a/no_noise", "EulerAncestralDiscreteScheduler", KDiffusion, "{}", Steps: 10, Seed: 0, ScaledSampleToStep: true, Sum: (152.3192, 0.01), Mean: (0.1983, 0.001)),
        new("euler_a/v_prediction", "EulerAncestralDiscreteScheduler", KDiffusion, """{ "prediction_type": "v_prediction" }""", Steps: 10, Seed: 0, ScaledSampleToStep: true, Sum: (108.4439, 0.01), Mean: (0.1412, 0.001)),
        new("euler_a/with_noise", "EulerAncestralDiscreteScheduler", KDiffusion, "{}", Steps: 10, Seed: 0, ScaledSampleToStep: true, NoiseStart: 8, Sum: (56163.0508, 0.01), Mean: (73.129, 0.001)),
        new("lms/no_noise", "LMSDiscreteScheduler", KDiffusion, "{}", Steps: 10, ScaledSampleToStep: true, Sum: (1006.388, 0.01), Mean: (1.31, 0.001)),
        new("lms/v_prediction", "LMSDiscreteScheduler", KDiffusion, """{ "prediction_type": "v_prediction" }""", Steps: 10, ScaledSampleToStep: true, Sum: (0.0017, 0.01), Mean: (2.2676e-06, 0.001)),
        new("lms/karras", "LMSDiscreteScheduler", KDiffusion, """{ "use_karras_sigmas": true }""", Steps: 10, ScaledSampleToStep: true, Sum: (3812.9927, 0.02), Mean: (4.9648, 0.001)),
        new("lms/with_noise", "LMSDiscreteScheduler", KDiffusion, "{}", Steps: 10, ScaledSampleToStep: true, NoiseStart: 8, Sum: (27663.6895, 0.01), Mean: (36.0204, 0.001)),
        new("heun/no_noise", "HeunDiscreteScheduler", KDiffusion, "{}", Steps: 10, ScaledSampleToStep: true, Sum: (0.1233, 0.01), Mean: (0.0002, 0.001)),
        new("heun/v_prediction", "HeunDiscreteScheduler", KDiffusion, """{ "prediction_type": "v_prediction" }""", Steps: 10, ScaledSampleToStep: true, Sum: (4.6934e-07, 0.01), Mean: (6.1112e-10, 0.001)),
        new("heun/karras", "HeunDiscreteScheduler", KDiffusion, """{ "use_karras_sigmas": true }""", Steps: 10, ScaledSampleToStep: true, Sum: (0.00015, 0.01), Mean: (1.9869554535034695e-07, 0.01)),
        new("heun/with_noise", "HeunDiscreteScheduler", KDiffusion, "{}", Steps: 10, ScaledSampleToStep: true, NoiseStart: 8, Sum: (75074.8906, 0.01), Mean: (97.7538, 0.001)),
        new("kdpm2/no_noise", "KDPM2DiscreteScheduler", KDiffusion, "{}", Steps: 10, ScaledSampleToStep: true, Sum: (20.4125, 0.01), Mean: (0.0266, 0.001)),
        new("kdpm2/v_prediction", "KDPM2DiscreteScheduler", KDiffusion, """{ "prediction_type": "v_prediction" }""", Steps: 10, ScaledSampleToStep: true, Sum: (4.6934e-07, 0.01), Mean: (6.1112e-10, 0.001)),
        new("kdpm2/with_noise", "KDPM2DiscreteScheduler", KDiffusion, "{}", Steps: 10, ScaledSampleToStep: true, NoiseStart: 8, Sum: (70408.4062, 0.01), Mean: (91.6776, 0.001)),
        new("kdpm2_a/no_noise", "KDPM2AncestralDiscreteScheduler", KDiffusion, "{}", Steps: 10, Seed: 0, ScaledSampleToStep: true, Sum: (13979.9433, 0.01), Mean: (18.203, 0.005)),
        new("kdpm2_a/v_prediction", "KDPM2AncestralDiscreteScheduler", KDiffusion, """{ "prediction_type": "v_prediction" }""", Steps: 10, Seed: 0, ScaledSampleToStep: true, Sum: (331.8133, 0.01), Mean: (0.432, 0.001)),
        new("kdpm2_a/with_noise", "KDPM2AncestralDiscreteScheduler", KDiffusion, "{}", Steps: 10, Seed: 0, ScaledSampleToStep: true, NoiseStart: 8, Sum: (93087.3437, 0.01), Mean: (121.2074, 0.005)),

        // test_scheduler_dpm_multi.py (torch.manual_seed(0) is passed but these configurations draw no noise).
        new("dpm_multi/no_noise", "DPMSolverMultistepScheduler", DpmMultistep, "{}", Steps: 10, Mean: (0.3301, 0.001)),
        new("dpm_multi/with_noise", "DPMSolverMultistepScheduler", DpmMultistep, "{}", Steps: 10, NoiseStart: 5, Sum: (318.4111, 0.01), Mean: (0.4146, 0.001)),
        new("dpm_multi/thresholding", "DPMSolverMultistepScheduler", DpmMultistep, """{ "thresholding": true, "dynamic_thresholding_ratio": 0.87, "sample_max_value": 0.5 }""", Steps: 10, Mean: (1.1364, 0.001)),
        new("dpm_multi/v_prediction", "DPMSolverMultistepScheduler", DpmMultistep, """{ "prediction_type": "v_prediction" }""", Steps: 10, Mean: (0.2251, 0.001)),
        new("dpm_multi/karras_v_prediction", "DPMSolverMultistepScheduler", DpmMultistep, """{ "prediction_type": "v_prediction", "use_karras_sigmas": true }""", Steps: 10, Mean: (0.2096, 0.001)),
        new("dpm_multi/lu_v_prediction", "DPMSolverMultistepScheduler", DpmMultistep, """{ "prediction_type": "v_prediction", "use_lu_lambdas": true }""", Steps: 10, Mean: (0.1554, 0.001)),
        new("dpm_multi/switch", "DPMSolverMultistepScheduler", DpmMultistep, "{}", Steps: 10, Mean: (0.3301, 0.001),
            SwitchChain: ["DPMSolverSinglestepScheduler", "UniPCMultistepScheduler", "DEISMultistepScheduler", "DPMSolverMultistepScheduler"]),

        // test_scheduler_dpm_single.py.
        new("dpm_single/no_noise", "DPMSolverSinglestepScheduler", DpmSinglestep, "{}", Steps: 10, Mean: (0.2791, 0.001)),
        new("dpm_single/karras", "DPMSolverSinglestepScheduler", DpmSinglestep, """{ "use_karras_sigmas": true }""", Steps: 10, Mean: (0.2248, 0.001)),
        new("dpm_single/v_prediction", "DPMSolverSinglestepScheduler", DpmSinglestep, """{ "prediction_type": "v_prediction" }""", Steps: 10, Mean: (0.1453, 0.001)),
        new("dpm_single/karras_v_prediction", "DPMSolverSinglestepScheduler", DpmSinglestep, """{ "prediction_type": "v_prediction", "use_karras_sigmas": true }""", Steps: 10, Mean: (0.0649, 0.001)),
        new("dpm_single/with_noise", "DPMSolverSinglestepScheduler", DpmSinglestep, "{}", Steps: 10, NoiseStart: 5, Sum: (269.2187, 0.01), Mean: (0.3505, 0.001)),
        new("dpm_single/uneven", "DPMSolverSinglestepScheduler", DpmSinglestep, "{}", Steps: 50, SkipFirst: 3, Mean: (0.2574, 0.001)),
        new("dpm_single/switch", "DPMSolverSinglestepScheduler", DpmSinglestep, "{}", Steps: 10, Mean: (0.2791, 0.001),
            SwitchChain: ["DEISMultistepScheduler", "DPMSolverMultistepScheduler", "UniPCMultistepScheduler", "DPMSolverSinglestepScheduler"]),

        // test_scheduler_deis.py.
        new("deis/no_noise", "DEISMultistepScheduler", Deis, "{}", Steps: 10, Mean: (0.23916, 0.001)),
        new("deis/v_prediction", "DEISMultistepScheduler", Deis, """{ "prediction_type": "v_prediction" }""", Steps: 10, Mean: (0.091, 0.001)),
        new("deis/with_noise", "DEISMultistepScheduler", Deis, "{}", Steps: 10, NoiseStart: 8, Sum: (315.3016, 0.01), Mean: (0.41054, 0.001)),

        // test_scheduler_unipc.py, on [4, 3, 8, 8] and [4, 3, 8] samples.
        new("unipc/no_noise", "UniPCMultistepScheduler", UniPC, "{}", Steps: 10, Mean: (0.2464, 0.001)),
        new("unipc/karras", "UniPCMultistepScheduler", UniPC, """{ "use_karras_sigmas": true }""", Steps: 10, Mean: (0.2925, 0.001)),
        new("unipc/v_prediction", "UniPCMultistepScheduler", UniPC, """{ "prediction_type": "v_prediction" }""", Steps: 10, Mean: (0.1014, 0.001)),
        new("unipc/karras_v_prediction", "UniPCMultistepScheduler", UniPC, """{ "prediction_type": "v_prediction", "use_karras_sigmas": true }""", Steps: 10, Mean: (0.1966, 0.001)),
        new("unipc/with_noise", "UniPCMultistepScheduler", UniPC, "{}", Steps: 10, NoiseStart: 8, Sum: (315.5757, 0.01), Mean: (0.4109, 0.001)),
        new("unipc/switch", "UniPCMultistepScheduler", UniPC, "{}", Steps: 10, Mean: (0.2464, 0.001),
            SwitchChain: ["DPMSolverSinglestepScheduler", "DEISMultistepScheduler", "DPMSolverMultistepScheduler", "UniPCMultistepScheduler"]),
        new("unipc_1d/no_noise", "UniPCMultistepScheduler", UniPC, "{}", Steps: 10, Mean: (0.2441, 0.001), Shape: Signal),
        new("unipc_1d/karras", "UniPCMultistepScheduler", UniPC, """{ "use_karras_sigmas": true }""", Steps: 10, Mean: (0.2898, 0.001), Shape: Signal),
        new("unipc_1d/v_prediction", "UniPCMultistepScheduler", UniPC, """{ "prediction_type": "v_prediction" }""", Steps: 10, Mean: (0.1014, 0.001), Shape: Signal),
        new("unipc_1d/karras_v_prediction", "UniPCMultistepScheduler", UniPC, """{ "prediction_type": "v_prediction", "use_karras_sigmas": true }""", Steps: 10, Mean: (0.1944, 0.001), Shape: Signal),
        new("unipc_1d/with_noise", "UniPCMultistepScheduler", UniPC, "{}", Steps: 10, NoiseStart: 8, Sum: (39.087, 0.01), Mean: (0.4072, 0.001), Shape: Signal),
    ];

    public static TheoryData<string> CaseNames => [.. AllCases.Select(c => c.Name)];

    [Theory]
    [MemberData(nameof(CaseNames))]
    [Trait("Category", "Parity")]
    [Trait("Area", "Schedulers")]
    public void FullLoop_MatchesDiffusersTestExpectations(string name)
    {
        LoopCase testCase = AllCases.Single(c => c.Name == name);
        DiffusionScheduler scheduler = Build(testCase);
        nint[] shape = (testCase.Shape ?? Image).Select(d => (nint)d).ToArray();
        float[] sample = Deterministic(testCase.Shape ?? Image, flip: false);
        var options = new SchedulerStepOptions(testCase.Seed is { } seed ? new TorchCpuGenerator(seed) : null);

        scheduler.SetTimesteps(testCase.Steps);
        TensorPrimitives.Multiply(sample, scheduler.InitNoiseSigma, sample);
        int start = testCase.SkipFirst;
        if (testCase.NoiseStart is { } noiseStart)
        {
            // timesteps[t_start·order:], with the sample noised to the first of them.
            start = noiseStart * scheduler.Order;
            float[] noise = Deterministic(testCase.Shape ?? Image, flip: true);
            scheduler.AddNoise(new ReadOnlyTensorSpan<float>(sample, shape), new ReadOnlyTensorSpan<float>(noise, shape), scheduler.Timesteps[start], new TensorSpan<float>(sample, shape));
        }

        var modelOutput = new float[sample.Length];
        var modelInput = new float[sample.Length];
        for (int i = start; i < scheduler.Timesteps.Count; i++)
        {
            float t = scheduler.Timesteps[i];
            scheduler.ScaleModelInput(new ReadOnlyTensorSpan<float>(sample, shape), t, new TensorSpan<float>(modelInput, shape));
            if (testCase.ScaledSampleToStep)
            {
                modelInput.CopyTo(sample);
            }

            for (int j = 0; j < sample.Length; j++)
            {
                modelOutput[j] = modelInput[j] * t / (t + 1f);
            }

            scheduler.Step(new ReadOnlyTensorSpan<float>(modelOutput, shape), t, new ReadOnlyTensorSpan<float>(sample, shape), new TensorSpan<float>(sample, shape), options);
        }

        double sum = sample.Sum(v => Math.Abs((double)v));
        double mean = sum / sample.Length;
        TestContext.Current.TestOutputHelper?.WriteLine($"{name}: sum {sum:G7} mean {mean:G7}");
        if (testCase.Sum is var (expectedSum, sumTolerance))
        {
            double tolerance = Math.Max(sumTolerance, 1e-6 * Math.Abs(expectedSum));
            Assert.True(Math.Abs(sum - expectedSum) < tolerance, $"{name}: sum |sample| = {sum:G9}, diffusers expects {expectedSum} ± {tolerance:G3}.");
        }

        var (expectedMean, meanTolerance) = testCase.Mean;
        Assert.True(Math.Abs(mean - expectedMean) < meanTolerance, $"{name}: mean |sample| = {mean:G9}, diffusers expects {expectedMean} ± {meanTolerance}.");
    }

    private static DiffusionScheduler Build(LoopCase testCase)
    {
        var config = new JsonObject { ["_class_name"] = testCase.ClassName };
        foreach (var (key, value) in (JsonObject)JsonNode.Parse(Quote(testCase.BaseConfig))!)
        {
            config[key] = value?.DeepClone();
        }

        foreach (var (key, value) in (JsonObject)JsonNode.Parse(testCase.Overrides)!)
        {
            config[key] = value?.DeepClone();
        }

        DiffusionScheduler scheduler = SchedulerFactory.FromConfig(SchedulerConfig.Parse(config.ToJsonString(), testCase.Name));
        foreach (string className in testCase.SwitchChain ?? [])
        {
            // X.from_config(previous.config)
            scheduler = SchedulerFactory.FromConfig(scheduler.Config.WithClassName(className));
        }

        return scheduler;
    }

    // Python's json writes -Infinity bare; SchedulerConfig.Parse accepts it, JsonNode.Parse does not.
    private static string Quote(string json) => json.Replace("-Infinity", "\"-Infinity\"", StringComparison.Ordinal);

    /// <summary>
    /// diffusers' dummy_sample_deter (and, flipped, dummy_noise_deter): arange(n) laid out as (channels, …, batch),
    /// divided by n, then permuted to (batch, channels, …).
    /// </summary>
    private static float[] Deterministic(int[] shape, bool flip)
    {
        int batch = shape[0];
        int count = shape.Aggregate(1, (a, b) => a * b);
        int perItem = count / batch;
        var values = new float[count];
        for (int b = 0; b < batch; b++)
        {
            for (int rest = 0; rest < perItem; rest++)
            {
                int k = rest * batch + b;
                values[b * perItem + rest] = (flip ? count - 1 - k : k) / (float)count;
            }
        }

        return values;
    }

    private sealed record LoopCase(
        string Name,
        string ClassName,
        string BaseConfig,
        string Overrides,
        int Steps,
        (double Value, double Tolerance) Mean,
        (double Value, double Tolerance)? Sum = null,
        ulong? Seed = null,
        bool ScaledSampleToStep = false,
        int? NoiseStart = null,
        int SkipFirst = 0,
        string[]? SwitchChain = null,
        int[]? Shape = null);
}
