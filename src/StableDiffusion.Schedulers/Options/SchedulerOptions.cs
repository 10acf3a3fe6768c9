namespace StableDiffusion.Schedulers;

/// <summary>
/// The configuration keys every scheduler shares: the training noise schedule and what the model predicts. Each
/// scheduler has its own options record deriving from this one, with diffusers' defaults for that class.
/// </summary>
/// <remarks>
/// Options are usually read from <c>scheduler_config.json</c> with the scheduler's <c>FromConfig</c>; build them in code
/// to configure a scheduler without a file. Property names are diffusers' configuration keys in .NET casing.
/// </remarks>
public abstract record SchedulerOptions
{
    private protected SchedulerOptions()
    {
    }

    /// <summary>The number of diffusion steps the model was trained with (<c>num_train_timesteps</c>, default 1000).</summary>
    public int NumTrainTimesteps { get; init; } = 1000;

    /// <summary>The first beta of the training schedule (<c>beta_start</c>; Stable Diffusion uses 0.00085).</summary>
    public double BetaStart { get; init; } = 0.0001;

    /// <summary>The last beta of the training schedule (<c>beta_end</c>; Stable Diffusion uses 0.012).</summary>
    public double BetaEnd { get; init; } = 0.02;

    /// <summary>How the betas are laid out between <see cref="BetaStart"/> and <see cref="BetaEnd"/> (<c>beta_schedule</c>).</summary>
    public BetaSchedule BetaSchedule { get; init; } = BetaSchedule.Linear;

    /// <summary>
    /// Betas given directly, one per training timestep (<c>trained_betas</c>); when set they replace <see cref="BetaSchedule"/>,
    /// <see cref="BetaStart"/> and <see cref="BetaEnd"/>.
    /// </summary>
    public IReadOnlyList<float>? TrainedBetas { get; init; }

    /// <summary>What the model predicts (<c>prediction_type</c>): the noise for Stable Diffusion 1.x.</summary>
    public PredictionType PredictionType { get; init; } = PredictionType.Epsilon;

    /// <summary>The beta schedules the class implements.</summary>
    private protected virtual ConfigEnum<BetaSchedule> BetaSchedules => ConfigNames.StandardBetaSchedules;

    /// <summary>The prediction types the class implements.</summary>
    private protected virtual ConfigEnum<PredictionType> PredictionTypes => ConfigNames.PredictionTypes;

    /// <summary>Checks the values against each other; the message names the configuration key at fault.</summary>
    internal virtual void Validate(ConfigContext context)
    {
        if (NumTrainTimesteps < 2)
        {
            throw context.Contradiction($"\"num_train_timesteps\" must be at least 2, but it is {NumTrainTimesteps}.");
        }

        if (!PredictionTypes.Accepts(PredictionType))
        {
            throw context.Contradiction($"\"prediction_type\" {PredictionType} is not implemented by {context.ClassName}.");
        }

        if (TrainedBetas is { } trained)
        {
            if (trained.Count != NumTrainTimesteps)
            {
                throw context.Contradiction(
                    $"\"trained_betas\" has {trained.Count} values, but \"num_train_timesteps\" is {NumTrainTimesteps}: give one beta per training timestep.");
            }

            if (trained.Any(b => !(b >= 0 && b < 1)))
            {
                throw context.Contradiction("\"trained_betas\" must all lie in [0, 1).");
            }

            return;
        }

        if (!BetaSchedules.Accepts(BetaSchedule))
        {
            throw context.Contradiction($"\"beta_schedule\" {BetaSchedule} is not implemented by {context.ClassName}.");
        }

        if (!(BetaStart >= 0 && BetaStart < 1) || !(BetaEnd >= 0 && BetaEnd < 1))
        {
            throw context.Contradiction($"\"beta_start\" ({BetaStart}) and \"beta_end\" ({BetaEnd}) must lie in [0, 1).");
        }
    }

    /// <summary>Adds the shared keys to a class's schema.</summary>
    private protected static ConfigSchema<T> SharedKeys<T>(string className, ConfigEnum<BetaSchedule> betaSchedules, ConfigEnum<PredictionType> predictionTypes)
        where T : SchedulerOptions, new() =>
        new ConfigSchema<T>(className)
            .Int("num_train_timesteps", o => o.NumTrainTimesteps, (o, v) => (T)((SchedulerOptions)o with { NumTrainTimesteps = v }))
            .Double("beta_start", o => o.BetaStart, (o, v) => (T)((SchedulerOptions)o with { BetaStart = v }))
            .Double("beta_end", o => o.BetaEnd, (o, v) => (T)((SchedulerOptions)o with { BetaEnd = v }))
            .Enum("beta_schedule", o => o.BetaSchedule, (o, v) => (T)((SchedulerOptions)o with { BetaSchedule = v }), betaSchedules)
            .FloatList("trained_betas", o => o.TrainedBetas, (o, v) => (T)((SchedulerOptions)o with { TrainedBetas = v }))
            .Enum("prediction_type", o => o.PredictionType, (o, v) => (T)((SchedulerOptions)o with { PredictionType = v }), predictionTypes);

    /// <summary>Checks the thresholding keys shared by several classes.</summary>
    private protected static void ValidateThresholding(ConfigContext context, double ratio, double sampleMaxValue)
    {
        if (!(ratio >= 0 && ratio <= 1))
        {
            throw context.Contradiction($"\"dynamic_thresholding_ratio\" must lie in [0, 1], but it is {ratio}.");
        }

        if (!(sampleMaxValue > 0))
        {
            throw context.Contradiction($"\"sample_max_value\" must be positive, but it is {sampleMaxValue}.");
        }
    }

    /// <summary>Checks that at most one of the sigma-spacing flags is set, as diffusers requires.</summary>
    private protected static void ValidateSigmaSpacing(ConfigContext context, bool karras, bool exponential, bool beta)
    {
        if ((karras ? 1 : 0) + (exponential ? 1 : 0) + (beta ? 1 : 0) > 1)
        {
            throw context.Contradiction("only one of \"use_karras_sigmas\", \"use_exponential_sigmas\" and \"use_beta_sigmas\" can be true.");
        }
    }

    /// <summary>Checks the solver order of the multistep solvers.</summary>
    private protected static void ValidateSolverOrder(ConfigContext context, int order, int max)
    {
        if (order < 1 || order > max)
        {
            throw context.Contradiction($"\"solver_order\" must be between 1 and {max}, but it is {order}.");
        }
    }
}
