using System.Numerics.Tensors;
using System.Text.Json;
using StableDiffusion.Randomness;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Schedulers.Tests.Parity;

/// <summary>
/// Every scheduler case of every reference: diffusers' timesteps, sigmas, init_noise_sigma, and every step's model input
/// and previous sample on a fixed dummy model, within max |got − ref| ≤ 1e-5·max(1, max |ref|) per array; and every case
/// diffusers itself refuses is refused here too.
/// </summary>
public sealed class SchedulerParityTests
{
    private const double Tolerance = 1e-5;

    private static readonly string[] SectionFields = ["base_config", "dummy_model", "x0", "note", "cases", "errors", "by_key"];
    private static readonly string[] CaseFields =
        ["name", "class", "overrides", "step_kwargs", "steps", "timesteps", "init_noise_sigma", "config", "stochastic", "final_sum", "final_mean"];

    public static IEnumerable<TheoryDataRow<string>> Cases => Reference.CaseNames("schedulers");

    public static IEnumerable<TheoryDataRow<string>> Errors => Reference.CaseNames("schedulers", "errors");

    [Theory]
    [MemberData(nameof(Cases))]
    [Trait("Category", "Parity")]
    [Trait("Area", "Schedulers")]
    public void Trajectory_MatchesDiffusers(string name)
    {
        (ReferenceSet set, JsonElement testCase) = Reference.Case("schedulers", name);
        JsonElement section = set.Root.GetProperty("schedulers");
        Reference.RequireKnownFields(section, $"{set.Label}: schedulers", SectionFields);
        Reference.RequireKnownFields(testCase, name, CaseFields);
        var worst = new WorstError();

        // cls.from_config({**base_config, **overrides}); set_timesteps(steps).
        DiffusionScheduler scheduler = SchedulerFactory.FromConfig(SchedulerConfig.Parse(set.SchedulerConfigOf(testCase), $"reference case {name}"));
        Assert.Equal(testCase.GetProperty("class").GetString(), scheduler.ClassName);
        scheduler.SetTimesteps(testCase.GetProperty("steps").GetInt32());

        float[] expectedTimesteps = testCase.GetProperty("timesteps").EnumerateArray().Select(t => (float)t.GetDouble()).ToArray();
        worst.Check(expectedTimesteps, [.. scheduler.Timesteps], $"{name} timesteps");
        worst.Check([(float)testCase.GetProperty("init_noise_sigma").GetDouble()], [scheduler.InitNoiseSigma], $"{name} init_noise_sigma");
        string arrays = $"sched/{testCase.GetProperty("name").GetString()}";
        if (set.HasArray($"{arrays}/sigmas"))
        {
            worst.Check(set.Array($"{arrays}/sigmas").ToSingle(), [.. scheduler.Sigmas], $"{name} sigmas");
        }

        SchedulerStepOptions options = StepOptions(testCase, name);
        NpyArray modelInputs = set.Array($"{arrays}/model_inputs");
        NpyArray prevSamples = set.Array($"{arrays}/prev_samples");
        float[] expectedInputs = modelInputs.ToSingle();
        float[] expectedSamples = prevSamples.ToSingle();
        Assert.Equal(scheduler.Timesteps.Count, modelInputs.Shape[0]);

        // sample = x0·init_noise_sigma; per step: input = scale_model_input(sample, t); sample = step(model(input, t), t, sample).
        NpyArray x0 = set.Array(section.GetProperty("x0").GetString()!);
        nint[] shape = x0.Shape.Select(d => (nint)d).ToArray();
        float[] sample = x0.ToSingle();
        TensorPrimitives.Multiply(sample, scheduler.InitNoiseSigma, sample);
        int length = sample.Length;
        var modelInput = new float[length];
        var modelOutput = new float[length];
        for (int i = 0; i < scheduler.Timesteps.Count; i++)
        {
            float t = scheduler.Timesteps[i];
            scheduler.ScaleModelInput(new ReadOnlyTensorSpan<float>(sample, shape), t, new TensorSpan<float>(modelInput, shape));
            worst.Check(expectedInputs.AsSpan(i * length, length), modelInput, $"{name} model_inputs[{i}] (t = {t})");

            DummyModel.Evaluate(modelInput, t, modelOutput);
            scheduler.Step(new ReadOnlyTensorSpan<float>(modelOutput, shape), t, new ReadOnlyTensorSpan<float>(sample, shape), new TensorSpan<float>(sample, shape), options);
            worst.Check(expectedSamples.AsSpan(i * length, length), sample, $"{name} prev_samples[{i}] (t = {t})");
        }

        TestContext.Current.TestOutputHelper?.WriteLine($"{name}: worst max|got - ref| / max(1, max|ref|) = {worst.Value:E2} ({worst.Where})");
    }

    [Theory]
    [MemberData(nameof(Errors))]
    [Trait("Category", "Parity")]
    [Trait("Area", "Schedulers")]
    public void CaseDiffusersRefuses_IsRefused(string name)
    {
        (ReferenceSet set, JsonElement errorCase) = Reference.Case("schedulers", name, "errors");
        Reference.RequireKnownFields(errorCase, name, "name", "class", "overrides", "steps", "error");
        string diffusersError = errorCase.GetProperty("error").GetString()!;

        Exception? refused = Record.Exception(() =>
        {
            DiffusionScheduler scheduler = SchedulerFactory.FromConfig(SchedulerConfig.Parse(set.SchedulerConfigOf(errorCase), $"reference case {name}"));
            scheduler.SetTimesteps(errorCase.GetProperty("steps").GetInt32());
            float[] sample = new float[256];
            nint[] shape = [1, 4, 8, 8];
            DummyModel.Denoise(scheduler, sample, shape, new SchedulerStepOptions(new TorchCpuGenerator(77)));
        });

        Assert.True(refused is ArgumentException or InvalidOperationException or SchedulerConfigException,
            $"{name}: diffusers refuses this case ({diffusersError}); the scheduler must refuse it with a clear exception, but {(refused is null ? "it ran" : $"it threw {refused.GetType().Name}")}.");
    }

    // The case's step arguments; stochastic cases draw from one torch CPU generator seeded 77 for the whole trajectory.
    private static SchedulerStepOptions StepOptions(JsonElement testCase, string name)
    {
        var options = new SchedulerStepOptions(testCase.GetProperty("stochastic").GetBoolean() ? new TorchCpuGenerator(77) : null);
        foreach (JsonProperty argument in testCase.GetProperty("step_kwargs").EnumerateObject())
        {
            options = argument.Name switch
            {
                "eta" => options with { Eta = argument.Value.GetSingle() },
                _ => throw new InvalidOperationException($"{name}: the step argument \"{argument.Name}\" has no SchedulerStepOptions counterpart."),
            };
        }

        return options;
    }

    private sealed class WorstError
    {
        public double Value { get; private set; }

        public string Where { get; private set; } = "";

        public void Check(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
        {
            double relative = ArrayAssert.CloseRelative(expected, actual, Tolerance, what);
            if (relative >= Value)
            {
                Value = relative;
                Where = what;
            }
        }
    }
}
