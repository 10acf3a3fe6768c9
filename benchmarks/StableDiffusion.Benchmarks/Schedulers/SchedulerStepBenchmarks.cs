using System.Numerics.Tensors;
using BenchmarkDotNet.Attributes;
using StableDiffusion.Randomness;
using StableDiffusion.Schedulers;

namespace StableDiffusion.Benchmarks.Schedulers;

/// <summary>
/// One denoising step of each scheduler on a 2×4×64×64 latent (a 512×512 image with classifier-free guidance), in steady
/// state: each iteration first sets a 950-step schedule and takes a few steps so multistep solvers have their history,
/// then times <see cref="StepsPerInvocation"/> consecutive steps, in place, as a pipeline runs them.
/// </summary>
/// <remarks>
/// Noise comes from a precomputed buffer so that the figures are the scheduler's own; the "(torch noise)" rows draw it
/// from <see cref="TorchCpuGenerator"/> as a pipeline does, to show what reproducing torch's stream adds.
/// Run: <c>dotnet run -c Release --project benchmarks/StableDiffusion.Benchmarks -- --filter '*SchedulerStep*' --job short</c>.
/// </remarks>
[MemoryDiagnoser]
public class SchedulerStepBenchmarks
{
    private const int StepsPerInvocation = 900;
    private const int WarmUpSteps = 4;

    // Long enough for warm-up plus the timed steps; 1,000 itself would put leading spacing's last timestep past the table.
    private const int ScheduleLength = 950;
    private const string TorchNoiseSuffix = " (torch noise)";

    private static readonly nint[] Shape = [2, 4, 64, 64];
    private static readonly int Length = 2 * 4 * 64 * 64;

    private static readonly SchedulerConfig StableDiffusion15 = SchedulerConfig.Parse("""
        {
          "_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
          "num_train_timesteps": 1000, "set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1,
          "trained_betas": null, "clip_sample": false,
          "original_inference_steps": 1000
        }
        """);

    private DiffusionScheduler _scheduler = null!;
    private SchedulerStepOptions _options = null!;
    private float[] _initialSample = null!;
    private float[] _sample = null!;
    private float[] _modelOutput = null!;
    private int _index;

    /// <summary>The scheduler, by the name UIs use (LCM is given a 1,000-step distillation schedule so it can run as long).</summary>
    [ParamsSource(nameof(Names))]
    public string Scheduler { get; set; } = "";

    public static IEnumerable<string> Names =>
    [
        "PLMS", "DDIM", "DDPM", "Euler", "Euler a", "LMS", "Heun", "DPM2", "DPM2 a", "DPM++ 2M", "DPM++ 2M Karras", "DPM++ 2M SDE",
        "DPM++ 2S", "UniPC", "DEIS", "LCM", "Euler a" + TorchNoiseSuffix, "DPM++ 2M SDE" + TorchNoiseSuffix,
    ];

    [GlobalSetup]
    public void Setup()
    {
        bool torchNoise = Scheduler.EndsWith(TorchNoiseSuffix, StringComparison.Ordinal);
        _scheduler = SchedulerFactory.Create(torchNoise ? Scheduler[..^TorchNoiseSuffix.Length] : Scheduler, StableDiffusion15);
        var random = new Random(42);
        _initialSample = Enumerable.Range(0, Length).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        _modelOutput = Enumerable.Range(0, Length).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        _sample = new float[Length];
        INoiseGenerator generator = torchNoise ? new TorchCpuGenerator(0) : new PrecomputedNoise(random);
        _options = new SchedulerStepOptions(generator, Eta: 0f);
    }

    [IterationSetup]
    public void StartRun()
    {
        _scheduler.SetTimesteps(ScheduleLength);
        _initialSample.CopyTo(_sample, 0);
        TensorPrimitives.Multiply(_sample, _scheduler.InitNoiseSigma, _sample);
        for (_index = 0; _index < WarmUpSteps; _index++)
        {
            TakeStep();
        }
    }

    [Benchmark(OperationsPerInvoke = StepsPerInvocation)]
    public void Step()
    {
        for (int i = 0; i < StepsPerInvocation; i++, _index++)
        {
            TakeStep();
        }
    }

    private void TakeStep() =>
        _scheduler.Step(
            new ReadOnlyTensorSpan<float>(_modelOutput, Shape),
            _scheduler.Timesteps[_index],
            new ReadOnlyTensorSpan<float>(_sample, Shape),
            new TensorSpan<float>(_sample, Shape),
            _options);

    /// <summary>Standard-normal-ish noise copied from a buffer drawn once, so that noise costs a copy.</summary>
    private sealed class PrecomputedNoise(Random random) : INoiseGenerator
    {
        private readonly float[] _noise = Enumerable.Range(0, 2 * Length).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        private int _offset;

        public void FillStandardNormal(Span<float> destination)
        {
            _offset = (_offset + 4099) % Length;
            _noise.AsSpan(_offset, destination.Length).CopyTo(destination);
        }

        public void FillStandardNormal(Span<double> destination) => throw new NotSupportedException();

        public void FillStandardNormal(Span<Half> destination) => throw new NotSupportedException();
    }
}
