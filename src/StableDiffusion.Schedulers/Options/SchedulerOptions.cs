using System.ComponentModel.DataAnnotations;

namespace StableDiffusion.Schedulers;

/// <summary>
/// The configuration keys every scheduler shares: the training noise schedule and what the model predicts. Each
/// scheduler has its own options record deriving from this one, with diffusers' defaults for that class.
/// </summary>
/// <remarks>
/// Options are usually read from <c>scheduler_config.json</c> with the scheduler's <c>FromConfig</c>; build them in code
/// to configure a scheduler without a file. Each property is a configuration key: its name is the diffusers key in .NET
/// casing (<see cref="NumTrainTimesteps"/> is <c>num_train_timesteps</c>), its initial value the class default, and a
/// <see cref="RangeAttribute"/> on it the values the key accepts.
/// </remarks>
public abstract record SchedulerOptions
{
    private protected SchedulerOptions()
    {
    }

    /// <summary>The number of diffusion steps the model was trained with (<c>num_train_timesteps</c>, default 1000).</summary>
    [Range(2, int.MaxValue)]
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

    /// <summary>
    /// Adds what the class's properties cannot say about its keys: enum names that differ from <see cref="ConfigNames"/>
    /// and diffusers keys without a property. Called once per class, on an instance with the defaults.
    /// </summary>
    internal virtual void DescribeKeys(ConfigKeyRules keys)
    {
    }

    /// <summary>
    /// Checks the values against each other and against what the class implements (each key's range is checked before);
    /// the message names the configuration key at fault.
    /// </summary>
    internal virtual void Validate(ConfigContext context)
    {
        context.RequireImplemented(nameof(PredictionType), PredictionType);
        if (this is ISigmaSpacingOptions { UseKarrasSigmas: var karras, UseExponentialSigmas: var exponential, UseBetaSigmas: var beta }
            && (karras ? 1 : 0) + (exponential ? 1 : 0) + (beta ? 1 : 0) > 1)
        {
            throw context.Contradiction("only one of \"use_karras_sigmas\", \"use_exponential_sigmas\" and \"use_beta_sigmas\" can be true.");
        }

        // Trained betas replace the beta schedule and its range, as in diffusers.
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

        context.RequireImplemented(nameof(BetaSchedule), BetaSchedule);
        if (!(BetaStart >= 0 && BetaStart < 1) || !(BetaEnd >= 0 && BetaEnd < 1))
        {
            throw context.Contradiction($"\"beta_start\" ({BetaStart}) and \"beta_end\" ({BetaEnd}) must lie in [0, 1).");
        }
    }
}
