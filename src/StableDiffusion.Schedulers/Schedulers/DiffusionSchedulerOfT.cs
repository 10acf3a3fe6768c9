using System.Diagnostics.CodeAnalysis;
using System.Reflection;

namespace StableDiffusion.Schedulers;

/// <summary>
/// A scheduler configured by <typeparamref name="TOptions"/>: building it from options or from a diffusers configuration,
/// its <see cref="Options"/> and <see cref="Config"/>, and <see cref="Clone"/>, as diffusers' <c>ConfigMixin</c> gives
/// every scheduler class.
/// </summary>
/// <remarks>
/// A class deriving from this one declares <c>public const string DiffusersName</c> (the diffusers class it ports) and a
/// public constructor taking its options; the options record's properties are its configuration keys
/// (<see cref="SchedulerOptions"/>). The rest is found once per class, as diffusers finds <c>cls</c> and its
/// <c>__init__</c> arguments.
/// </remarks>
/// <typeparam name="TSelf">The scheduler class itself.</typeparam>
/// <typeparam name="TOptions">Its options record.</typeparam>
public abstract class DiffusionScheduler<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors | DynamicallyAccessedMemberTypes.PublicFields)] TSelf, [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicProperties | DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)] TOptions> : DiffusionScheduler
    where TSelf : DiffusionScheduler<TSelf, TOptions>
    where TOptions : SchedulerOptions, new()
{
    private static readonly string Name = DiffusersNameOf(typeof(TSelf));
    private static readonly ConfigSchema<TOptions> Schema = new(Name);
    private static readonly ConstructorInvoker Constructor = ConstructorInvoker.Create(
        typeof(TSelf).GetConstructor([typeof(TOptions)])
        ?? throw new InvalidOperationException($"{typeof(TSelf).Name} must have a public constructor taking {typeof(TOptions).Name}."));

    private SchedulerConfig? _config;

    /// <summary>Validates the options (diffusers' defaults when null) and builds the training noise schedule.</summary>
    /// <param name="options">The options.</param>
    /// <param name="finiteTerminalSigma">
    /// Whether a schedule rescaled to zero terminal SNR keeps its last sigma finite, as the sigma-based schedulers do.
    /// </param>
    /// <exception cref="SchedulerConfigException">The options contradict each other.</exception>
    private protected DiffusionScheduler(TOptions? options, bool finiteTerminalSigma = false)
        : base(Validated(options ??= new TOptions()), finiteTerminalSigma)
    {
        Options = options;
    }

    /// <summary>The options this scheduler was built with.</summary>
    public TOptions Options { get; }

    /// <inheritdoc />
    internal override SchedulerOptions ResolvedOptions => Options;

    /// <inheritdoc />
    /// <remarks>
    /// For a scheduler built from a configuration, that configuration (unknown keys kept); for one built from options, the
    /// keys whose values differ from the class defaults.
    /// </remarks>
    public sealed override SchedulerConfig Config => _config ??= Schema.Write(Options);

    /// <inheritdoc />
    public sealed override string ClassName => Name;

    /// <summary>Builds the scheduler from a configuration as diffusers' <c>from_config</c> does.</summary>
    /// <param name="config">The configuration; keys it lacks take this class's defaults.</param>
    /// <exception cref="SchedulerConfigException">The configuration is malformed or contradictory.</exception>
    public static TSelf FromConfig(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        (TOptions options, SchedulerConfig kept) = Schema.Read(config);
        return Create(options, kept);
    }

    /// <inheritdoc />
    public override TSelf Clone() => Create(Options, _config);

    private static TSelf Create(TOptions options, SchedulerConfig? config)
    {
        var scheduler = (TSelf)Constructor.Invoke(options);
        ((DiffusionScheduler<TSelf, TOptions>)scheduler)._config = config;
        return scheduler;
    }

    private static TOptions Validated(TOptions options)
    {
        Schema.Validate(options);
        return options;
    }

    private static string DiffusersNameOf([DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicFields)] Type schedulerType) =>
        schedulerType.GetField("DiffusersName", BindingFlags.Public | BindingFlags.Static | BindingFlags.DeclaredOnly)?.GetRawConstantValue() as string
        ?? throw new InvalidOperationException($"{schedulerType.Name} must declare public const string DiffusersName, the diffusers class it ports.");
}
