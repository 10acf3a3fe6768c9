using System.Collections.ObjectModel;
using System.Numerics.Tensors;

namespace StableDiffusion.Schedulers;

/// <summary>
/// The base of this package's schedulers: the <see cref="IScheduler"/> contract with its argument checks, the training
/// noise schedule, and the step-index bookkeeping diffusers' schedulers share. Implement <see cref="IScheduler"/> directly
/// to write a scheduler of your own.
/// </summary>
/// <remarks>
/// Every scheduler here is a faithful port of the diffusers class of the same name: the same timesteps, sigmas and
/// float32 arithmetic, so a denoising loop gives diffusers' latents to within float rounding. Instances are not
/// thread-safe; <see cref="Clone"/> gives each generation its own.
/// </remarks>
public abstract class DiffusionScheduler : IScheduler
{
    private float[] _timesteps = [];
    private ReadOnlyCollection<float> _timestepsView = ReadOnlyCollection<float>.Empty;
    private int _stateLength = -1;

    private protected DiffusionScheduler(SchedulerOptions options, bool finiteTerminalSigma)
    {
        Noise = NoiseSchedule.Create(options, options is IZeroTerminalSnrOptions { RescaleBetasZeroSnr: true }, finiteTerminalSigma);
        NumTrainTimesteps = options.NumTrainTimesteps;
        AlphasCumprod = Array.AsReadOnly(Noise.AlphasCumprod);
    }

    /// <inheritdoc />
    public abstract SchedulerConfig Config { get; }

    /// <summary>The resolved options (a record with value equality), whatever the class: two schedulers of one class with
    /// equal options step identically.</summary>
    internal abstract SchedulerOptions ResolvedOptions { get; }

    /// <inheritdoc />
    public virtual int Order => 1;

    /// <inheritdoc />
    public virtual float InitNoiseSigma => 1f;

    /// <inheritdoc />
    public IReadOnlyList<float> Timesteps => _timestepsView;

    /// <inheritdoc />
    public int NumInferenceSteps { get; private set; }

    /// <summary>The number of timesteps the model was trained with (<c>num_train_timesteps</c>).</summary>
    public int NumTrainTimesteps { get; }

    /// <summary>ᾱ per training timestep (diffusers' <c>alphas_cumprod</c>), float32 as diffusers holds it.</summary>
    public IReadOnlyList<float> AlphasCumprod { get; }

    /// <summary>
    /// The noise levels of the current schedule (diffusers' <c>sigmas</c>, laid out as diffusers lays them out), ending
    /// with the final one; empty for schedulers that have none (PNDM, DDIM, DDPM, LCM).
    /// </summary>
    public IReadOnlyList<float> Sigmas => Array.AsReadOnly(SigmaArray);

    /// <summary>
    /// The index into <see cref="Timesteps"/> of the next step (diffusers' <c>step_index</c>); null before the first step,
    /// and always null for PNDM, DDIM and DDPM, which step by timestep value.
    /// </summary>
    public int? StepIndex { get; private set; }

    /// <summary>The index set by <see cref="SetBeginIndex"/> (diffusers' <c>begin_index</c>); null when not set.</summary>
    public int? BeginIndex { get; private set; }

    /// <summary>The diffusers class name this scheduler ports, such as <c>EulerDiscreteScheduler</c>.</summary>
    public abstract string ClassName { get; }

    private protected NoiseSchedule Noise { get; }

    /// <inheritdoc />
    /// <exception cref="ArgumentOutOfRangeException">
    /// <paramref name="numInferenceSteps"/> is below 1, above <see cref="NumTrainTimesteps"/>, or out of range for this
    /// scheduler's configuration.
    /// </exception>
    public void SetTimesteps(int numInferenceSteps)
    {
        if (numInferenceSteps < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(numInferenceSteps), numInferenceSteps, "The number of inference steps must be at least 1.");
        }

        if (numInferenceSteps > NumTrainTimesteps)
        {
            throw new ArgumentOutOfRangeException(
                nameof(numInferenceSteps),
                numInferenceSteps,
                $"{ClassName} cannot take more inference steps than the {NumTrainTimesteps} timesteps the model was trained with (num_train_timesteps).");
        }

        InstallTimesteps(ComputeTimesteps(numInferenceSteps), numInferenceSteps);
    }

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException"><see cref="SetTimesteps"/> has not been called.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="beginIndex"/> is not an index into <see cref="Timesteps"/>.</exception>
    public void SetBeginIndex(int beginIndex)
    {
        RequireTimesteps(nameof(SetBeginIndex));
        if (beginIndex < 0 || beginIndex >= _timesteps.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(beginIndex), beginIndex, $"The begin index must be between 0 and {_timesteps.Length - 1}, an index into Timesteps.");
        }

        BeginIndex = beginIndex;
    }

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException"><see cref="SetTimesteps"/> has not been called.</exception>
    /// <exception cref="ArgumentException">The tensors differ in shape or are not dense, or the timestep is not in the schedule.</exception>
    public void ScaleModelInput(ReadOnlyTensorSpan<float> sample, float timestep, TensorSpan<float> destination)
    {
        RequireTimesteps(nameof(ScaleModelInput));
        RequireSameShape(sample, nameof(sample), destination, nameof(destination));
        ScaleModelInputCore(sample.AsSpan(), timestep, destination.AsSpan());
    }

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">
    /// <see cref="SetTimesteps"/> has not been called, every step has been taken, or the step needs noise and
    /// <see cref="SchedulerStepOptions.Generator"/> is null.
    /// </exception>
    /// <exception cref="ArgumentException">
    /// The tensors differ in shape or are not dense, or the shape changed since the previous step, or the timestep is not
    /// in the schedule.
    /// </exception>
    public void Step(ReadOnlyTensorSpan<float> modelOutput, float timestep, ReadOnlyTensorSpan<float> sample, TensorSpan<float> prevSample, SchedulerStepOptions? options = null)
    {
        RequireTimesteps(nameof(Step));
        RequireSameShape(sample, nameof(sample), modelOutput, nameof(modelOutput));
        RequireSameShape(sample, nameof(sample), prevSample, nameof(prevSample));
        int length = checked((int)sample.FlattenedLength);
        if (_stateLength != length)
        {
            if (_stateLength >= 0 && HasStepState)
            {
                throw new ArgumentException(
                    $"The sample has {length} elements but the previous steps of this run had {_stateLength}: call SetTimesteps before denoising a sample of another shape.",
                    nameof(sample));
            }

            _stateLength = length;
        }

        int batchSize = sample.Rank > 0 ? checked((int)sample.Lengths[0]) : 1;
        StepCore(modelOutput.AsSpan(), timestep, sample.AsSpan(), prevSample.AsSpan(), options ?? SchedulerStepOptions.Default, batchSize);
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The tensors differ in shape or are not dense, or the timestep is not valid here.</exception>
    public void AddNoise(ReadOnlyTensorSpan<float> originalSamples, ReadOnlyTensorSpan<float> noise, float timestep, TensorSpan<float> destination)
    {
        RequireSameShape(originalSamples, nameof(originalSamples), noise, nameof(noise));
        RequireSameShape(originalSamples, nameof(originalSamples), destination, nameof(destination));
        AddNoiseCore(originalSamples.AsSpan(), noise.AsSpan(), timestep, destination.AsSpan());
    }

    /// <summary>A new scheduler of the same class and configuration, with no schedule and no state.</summary>
    public abstract DiffusionScheduler Clone();

    /// <inheritdoc />
    IScheduler IScheduler.Clone() => Clone();

    /// <inheritdoc />
    public override string ToString() => NumInferenceSteps == 0 ? ClassName : $"{ClassName} ({NumInferenceSteps} steps)";

    /// <summary>Computes the schedule for <paramref name="numInferenceSteps"/> steps (already range-checked) and returns its timesteps.</summary>
    private protected abstract float[] ComputeTimesteps(int numInferenceSteps);

    /// <summary>Clears the per-run state of multistep and second-order solvers (their buffers may be kept for reuse); the default has none.</summary>
    private protected virtual void ResetState()
    {
    }

    /// <summary>Whether earlier steps of this run left state that later steps read; the default has none.</summary>
    private protected virtual bool HasStepState => false;

    /// <summary>Scales the model input; the default (DDPM-family and DPM-Solver schedulers) leaves it unscaled.</summary>
    private protected virtual void ScaleModelInputCore(ReadOnlySpan<float> sample, float timestep, Span<float> destination) => CopyIfDistinct(sample, destination);

    /// <summary>One step with validated arguments.</summary>
    private protected abstract void StepCore(ReadOnlySpan<float> modelOutput, float timestep, ReadOnlySpan<float> sample, Span<float> prevSample, SchedulerStepOptions options, int batchSize);

    /// <summary>Noises samples with validated arguments.</summary>
    private protected abstract void AddNoiseCore(ReadOnlySpan<float> originalSamples, ReadOnlySpan<float> noise, float timestep, Span<float> destination);

    /// <summary>Replaces the schedule (for schedulers with extra <c>set_timesteps</c> arguments) and resets the run.</summary>
    private protected void InstallTimesteps(float[] timesteps, int numInferenceSteps)
    {
        _timesteps = timesteps;
        _timestepsView = Array.AsReadOnly(timesteps);
        NumInferenceSteps = numInferenceSteps;
        StepIndex = null;
        BeginIndex = null;
        _stateLength = -1;
        ResetState();
    }

    /// <summary>A copy of custom timesteps, checked to be a non-empty list of finite numbers.</summary>
    private protected static float[] CustomList(IReadOnlyList<float> values, string parameterName, int minimumCount = 1)
    {
        ArgumentNullException.ThrowIfNull(values, parameterName);
        if (values.Count < minimumCount)
        {
            throw new ArgumentException($"At least {minimumCount} value(s) are needed, but the list has {values.Count}.", parameterName);
        }

        float[] copy = [.. values];
        if (copy.Any(v => !float.IsFinite(v)))
        {
            throw new ArgumentException("The list holds a value that is not a finite number.", parameterName);
        }

        return copy;
    }

    /// <summary>Custom timesteps that index the training tables: whole numbers in range and strictly descending.</summary>
    private protected float[] DescendingTrainingTimesteps(IReadOnlyList<float> timesteps)
    {
        float[] copy = CustomList(timesteps, nameof(timesteps));
        for (int i = 0; i < copy.Length; i++)
        {
            TrainingTimestep(copy[i], nameof(timesteps));
            if (i > 0 && copy[i] >= copy[i - 1])
            {
                throw new ArgumentException($"Custom timesteps must be in descending order, but {copy[i]} follows {copy[i - 1]}.", nameof(timesteps));
            }
        }

        return copy;
    }

    /// <summary>Throws when the configuration derives its own timesteps from respaced sigmas.</summary>
    private protected void RequireNoRespacedSigmas(ISigmaSpacingOptions options, bool luLambdas = false)
    {
        string? key = options.UseKarrasSigmas ? "use_karras_sigmas" : options.UseExponentialSigmas ? "use_exponential_sigmas" : options.UseBetaSigmas ? "use_beta_sigmas" : luLambdas ? "use_lu_lambdas" : null;
        if (key is not null)
        {
            throw new InvalidOperationException($"{ClassName} cannot take custom timesteps with {key}: its timesteps come from the respaced sigmas. Pass a step count instead.");
        }
    }

    /// <summary>The current timesteps (the array behind <see cref="Timesteps"/>).</summary>
    private protected float[] TimestepArray => _timesteps;

    /// <summary>The current sigmas (the array behind <see cref="Sigmas"/>), set by the schedulers that have them.</summary>
    private protected float[] SigmaArray { get; set; } = [];

    /// <summary>
    /// The step index, initialised as diffusers' <c>_init_step_index</c> does on the first call: the begin index if set,
    /// else the position of <paramref name="timestep"/> in the schedule (its second occurrence when it occurs twice).
    /// </summary>
    /// <param name="timestep">The timestep passed to the call.</param>
    /// <param name="lastIfMissing">
    /// Whether a timestep not in the schedule means the last step (the DPM-Solver family) rather than an error.
    /// </param>
    private protected int CurrentStepIndex(float timestep, bool lastIfMissing = false)
    {
        StepIndex ??= BeginIndex ?? IndexForTimestep(timestep, lastIfMissing);
        return StepIndex.Value;
    }

    /// <summary>The step index of a step, checked against the <paramref name="stepCount"/> steps of the schedule.</summary>
    private protected int StepIndexForStep(float timestep, int stepCount, bool lastIfMissing = false)
    {
        int index = CurrentStepIndex(timestep, lastIfMissing);
        if (index >= stepCount)
        {
            throw new InvalidOperationException(
                $"{ClassName} has taken all {stepCount} steps of its schedule: call SetTimesteps to start another run.");
        }

        return index;
    }

    /// <summary>Moves to the next step (diffusers' <c>_step_index += 1</c>).</summary>
    private protected void AdvanceStepIndex() => StepIndex++;

    /// <summary>
    /// diffusers' <c>index_for_timestep</c>: the position of <paramref name="timestep"/> in the schedule, the second one
    /// when it occurs twice (so that a schedule starting in the middle, as image-to-image does, does not skip a sigma).
    /// </summary>
    private protected int IndexForTimestep(float timestep, bool lastIfMissing = false)
    {
        int first = -1;
        for (int i = 0; i < _timesteps.Length; i++)
        {
            if (_timesteps[i] == timestep)
            {
                if (first >= 0)
                {
                    return i;
                }

                first = i;
            }
        }

        if (first >= 0)
        {
            return first;
        }

        return lastIfMissing
            ? _timesteps.Length - 1
            : throw new ArgumentException($"Timestep {timestep} is not one of {ClassName}'s Timesteps; pass the timesteps in order, or call SetBeginIndex first.", nameof(timestep));
    }

    /// <summary>
    /// A timestep used as an index into the training tables, which must be a whole number in [0, <see cref="NumTrainTimesteps"/>).
    /// </summary>
    private protected int TrainingTimestep(float timestep, string parameterName = "timestep")
    {
        if (timestep != MathF.Floor(timestep) || timestep < 0 || timestep >= NumTrainTimesteps)
        {
            throw new ArgumentOutOfRangeException(
                parameterName,
                timestep,
                $"{ClassName} indexes its training tables by timestep, so the timestep must be a whole number from 0 to {NumTrainTimesteps - 1}.");
        }

        return (int)timestep;
    }

    /// <summary>
    /// The integer timesteps of the schedulers that index their training tables by timestep (PNDM, DDIM, DDPM), checked
    /// against the training range.
    /// </summary>
    private protected long[] TrainingTableTimesteps(ITimestepSpacingOptions options, int numInferenceSteps)
    {
        long[] timesteps = TimestepSchedules.Discrete(options.TimestepSpacing, NumTrainTimesteps, numInferenceSteps, options.StepsOffset);
        RequireTrainingRange(timesteps, $"timestep_spacing \"{ConfigNames.TimestepSpacings.NameOf(options.TimestepSpacing)}\" and steps_offset {options.StepsOffset}");
        return timesteps;
    }

    /// <summary>Checks integer timesteps of a schedule against the training range (leading spacing plus a steps offset can exceed it).</summary>
    private protected void RequireTrainingRange(IEnumerable<long> timesteps, string spacingDescription)
    {
        foreach (long t in timesteps)
        {
            if (t < 0 || t >= NumTrainTimesteps)
            {
                throw new ArgumentOutOfRangeException(
                    "numInferenceSteps",
                    $"{ClassName} with {spacingDescription} gives timestep {t} for this number of steps, outside the training range 0 to {NumTrainTimesteps - 1} it indexes (diffusers fails or wraps around here). Use another number of steps, steps_offset or timestep_spacing.");
            }
        }
    }

    /// <summary>The generator of a step that draws noise; throws a clear error when the caller gave none.</summary>
    private protected INoiseGenerator RequireGenerator(SchedulerStepOptions options, string why) =>
        options.Generator ?? throw new InvalidOperationException(
            $"{ClassName} {why}, but SchedulerStepOptions.Generator is null. Pass a seeded INoiseGenerator (such as StableDiffusion.Randomness.TorchCpuGenerator) in SchedulerStepOptions.Generator so the step is reproducible.");

    /// <summary>A state buffer of <paramref name="length"/> elements, allocated on first use and reused afterwards.</summary>
    private protected static float[] Buffer(ref float[]? buffer, int length)
    {
        if (buffer is null || buffer.Length != length)
        {
            buffer = new float[length];
        }

        return buffer;
    }

    /// <summary>Copies unless both spans are the same memory.</summary>
    private protected static void CopyIfDistinct(ReadOnlySpan<float> source, Span<float> destination)
    {
        if (!source.Overlaps(destination, out int offset) || offset != 0)
        {
            source.CopyTo(destination);
        }
    }

    /// <summary>
    /// Keeps a predicted x₀ in range as DDIM, DDPM and LCM do: dynamic thresholding when it is on, else clamping to
    /// ±<c>clip_sample_range</c> when <c>clip_sample</c> is on.
    /// </summary>
    private protected static void KeepInRange<TOptions>(Span<float> originalSample, int batchSize, TOptions options, ref float[]? scratch)
        where TOptions : IThresholdingOptions, ISampleClippingOptions
    {
        if (options.Thresholding)
        {
            SampleClipping.Threshold(originalSample, batchSize, options.DynamicThresholdingRatio, options.SampleMaxValue, Buffer(ref scratch, originalSample.Length));
        }
        else if (options.ClipSample)
        {
            SampleClipping.Clip(originalSample, (float)options.ClipSampleRange);
        }
    }

    /// <summary><c>√ᾱ·x₀ + √(1 − ᾱ)·ε</c> at a training timestep (add_noise of the DDPM family).</summary>
    private protected void AddNoiseAtTrainingTimestep(ReadOnlySpan<float> originalSamples, ReadOnlySpan<float> noise, float timestep, Span<float> destination)
    {
        float alphaProd = Noise.AlphasCumprod[TrainingTimestep(timestep)];
        Elementwise.LinearCombination(MathF.Sqrt(alphaProd), originalSamples, MathF.Sqrt(1f - alphaProd), noise, destination);
    }

    /// <summary><c>x₀ + σ·ε</c> at the add_noise sigma of a k-diffusion schedule (Euler, Heun, LMS, KDPM2).</summary>
    private protected void AddNoiseAtSigma(float[] sigmas, ReadOnlySpan<float> originalSamples, ReadOnlySpan<float> noise, float timestep, Span<float> destination) =>
        Elementwise.LinearCombination(1f, originalSamples, sigmas[AddNoiseIndex(timestep, lastIfMissing: false)], noise, destination);

    /// <summary>
    /// <c>α·x₀ + σ_t·ε</c> at the add_noise sigma of a DPM-Solver-family schedule, α and σ_t being the sigma's
    /// variance-preserving counterparts (a timestep missing from the schedule means the last sigma).
    /// </summary>
    private protected void AddNoiseVariancePreserving(float[] sigmas, ReadOnlySpan<float> originalSamples, ReadOnlySpan<float> noise, float timestep, Span<float> destination)
    {
        DpmSolverMath.Point point = DpmSolverMath.At(sigmas[AddNoiseIndex(timestep, lastIfMissing: true)]);
        Elementwise.LinearCombination(point.Alpha, originalSamples, point.Sigma, noise, destination);
    }

    /// <summary>
    /// The sigma index add_noise uses (diffusers' sigma schedulers): the timestep's position unless a begin index is set,
    /// else the current step index or the begin index.
    /// </summary>
    private protected int AddNoiseIndex(float timestep, bool lastIfMissing)
    {
        RequireTimesteps(nameof(AddNoise));
        return BeginIndex is null ? IndexForTimestep(timestep, lastIfMissing) : StepIndex ?? BeginIndex.Value;
    }

    private void RequireTimesteps(string operation)
    {
        if (NumInferenceSteps == 0)
        {
            throw new InvalidOperationException($"{ClassName}.{operation} needs a schedule: call SetTimesteps(numInferenceSteps) first.");
        }
    }

    private static void RequireSameShape(ReadOnlyTensorSpan<float> expected, string expectedName, ReadOnlyTensorSpan<float> actual, string actualName)
    {
        if (!expected.Lengths.SequenceEqual(actual.Lengths))
        {
            throw new ArgumentException(
                $"{actualName} has shape [{string.Join(", ", actual.Lengths.ToArray())}] but {expectedName} has shape [{string.Join(", ", expected.Lengths.ToArray())}]; they must match.",
                actualName);
        }

        if (expected.FlattenedLength == 0)
        {
            throw new ArgumentException($"{expectedName} is empty.", expectedName);
        }
    }

    private static void RequireSameShape(ReadOnlyTensorSpan<float> expected, string expectedName, TensorSpan<float> actual, string actualName) =>
        RequireSameShape(expected, expectedName, (ReadOnlyTensorSpan<float>)actual, actualName);
}
