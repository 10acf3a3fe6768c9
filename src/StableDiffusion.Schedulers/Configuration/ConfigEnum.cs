using System.Text.Json;
using System.Text.Json.Nodes;

namespace StableDiffusion.Schedulers;

/// <summary>
/// The diffusers spellings of an enum's values for one configuration key: the names a class accepts, aliases diffusers
/// maps to another value, and names diffusers knows that this package deliberately does not support (with the reason).
/// </summary>
/// <typeparam name="TEnum">The .NET enum.</typeparam>
internal sealed class ConfigEnum<TEnum> : IConfigEnum
    where TEnum : struct, Enum
{
    private readonly (string Name, TEnum Value)[] _names;
    private readonly (string Name, TEnum Value, bool Registered)[] _aliases;
    private readonly (string Name, string Reason)[] _unsupported;

    public ConfigEnum(params (string Name, TEnum Value)[] names)
        : this(names, [], [])
    {
    }

    private ConfigEnum((string Name, TEnum Value)[] names, (string Name, TEnum Value, bool Registered)[] aliases, (string Name, string Reason)[] unsupported)
    {
        _names = names;
        _aliases = aliases;
        _unsupported = unsupported;
    }

    /// <summary>These names with only <paramref name="values"/> accepted (the rest are unknown to the class).</summary>
    public ConfigEnum<TEnum> Only(params TEnum[] values) =>
        new(_names.Where(n => values.Contains(n.Value)).ToArray(), _aliases.Where(a => values.Contains(a.Value)).ToArray(), _unsupported);

    /// <summary>
    /// These names plus an alias that diffusers maps to <paramref name="value"/>; when <paramref name="registered"/>,
    /// diffusers also writes the canonical name into the scheduler's config (its <c>register_to_config</c> call).
    /// </summary>
    public ConfigEnum<TEnum> WithAlias(string name, TEnum value, bool registered = true) => new(_names, [.. _aliases, (name, value, registered)], _unsupported);

    /// <summary>These names plus a name diffusers accepts that this package rejects, and why.</summary>
    public ConfigEnum<TEnum> WithUnsupported(string name, string reason) => new(_names, _aliases, [.. _unsupported, (name, reason)]);

    /// <summary>The diffusers name of <paramref name="value"/>.</summary>
    public string NameOf(TEnum value)
    {
        foreach (var (name, candidate) in _names)
        {
            if (EqualityComparer<TEnum>.Default.Equals(candidate, value))
            {
                return name;
            }
        }

        throw new ArgumentOutOfRangeException(nameof(value), value, $"{typeof(TEnum).Name}.{value} is not valid here.");
    }

    /// <summary>Whether <paramref name="value"/> is accepted.</summary>
    public bool Accepts(TEnum value) => _names.Any(n => EqualityComparer<TEnum>.Default.Equals(n.Value, value));

    /// <summary>Whether <paramref name="node"/> is an alias diffusers replaces by its canonical name in the config.</summary>
    public bool IsRegisteredAlias(JsonNode? node) =>
        node?.GetValueKind() == JsonValueKind.String && _aliases.Any(a => a.Registered && a.Name == JsonValues.AsString(node));

    /// <summary>Parses a configuration value.</summary>
    public TEnum Parse(JsonNode? node, ConfigContext context, string key)
    {
        if (node?.GetValueKind() == JsonValueKind.String)
        {
            string text = JsonValues.AsString(node)!;
            foreach (var (name, value) in _names)
            {
                if (name == text)
                {
                    return value;
                }
            }

            foreach (var (name, value, _) in _aliases)
            {
                if (name == text)
                {
                    return value;
                }
            }

            foreach (var (name, reason) in _unsupported)
            {
                if (name == text)
                {
                    throw context.Unsupported(key, node, reason);
                }
            }
        }

        throw context.Invalid(key, "one of " + string.Join(", ", _names.Select(n => $"\"{n.Name}\"")), node);
    }

    /// <inheritdoc />
    Type IConfigEnum.EnumType => typeof(TEnum);

    /// <inheritdoc />
    object IConfigEnum.Parse(JsonNode? node, ConfigContext context, string key) => Parse(node, context, key);

    /// <inheritdoc />
    string IConfigEnum.NameOf(object value) => NameOf((TEnum)value);

    /// <inheritdoc />
    bool IConfigEnum.Accepts(object value) => Accepts((TEnum)value);
}

/// <summary>The diffusers spellings of one enum, seen without its type, as the configuration schema reads them.</summary>
internal interface IConfigEnum
{
    /// <summary>The .NET enum.</summary>
    Type EnumType { get; }

    /// <summary>Parses a configuration value into a boxed enum value.</summary>
    object Parse(JsonNode? node, ConfigContext context, string key);

    /// <summary>The diffusers name of a boxed enum value.</summary>
    string NameOf(object value);

    /// <summary>Whether a boxed enum value is accepted.</summary>
    bool Accepts(object value);

    /// <summary>Whether <paramref name="node"/> is an alias diffusers replaces by its canonical name in the config.</summary>
    bool IsRegisteredAlias(JsonNode? node);
}

/// <summary>The diffusers spellings of the configuration enums.</summary>
internal static class ConfigNames
{
    public static readonly ConfigEnum<BetaSchedule> BetaSchedules = new(
        ("linear", BetaSchedule.Linear),
        ("scaled_linear", BetaSchedule.ScaledLinear),
        ("squaredcos_cap_v2", BetaSchedule.SquaredCosCapV2),
        ("exp", BetaSchedule.Exp),
        ("laplace", BetaSchedule.Laplace),
        ("sigmoid", BetaSchedule.Sigmoid));

    /// <summary>The beta schedules most classes accept.</summary>
    public static readonly ConfigEnum<BetaSchedule> StandardBetaSchedules =
        BetaSchedules.Only(BetaSchedule.Linear, BetaSchedule.ScaledLinear, BetaSchedule.SquaredCosCapV2);

    public static readonly ConfigEnum<PredictionType> PredictionTypes = new ConfigEnum<PredictionType>(
        ("epsilon", PredictionType.Epsilon),
        ("sample", PredictionType.Sample),
        ("v_prediction", PredictionType.VPrediction))
        .WithUnsupported("flow_prediction", "flow-matching models (SD3, Flux) are outside the scope of this package.");

    /// <summary>The prediction types of the classes whose diffusers step raises NotImplementedError for "sample".</summary>
    public static ConfigEnum<PredictionType> PredictionTypesWithoutSample(string className) => PredictionTypes
        .Only(PredictionType.Epsilon, PredictionType.VPrediction)
        .WithUnsupported("sample", $"diffusers' {className} does not implement it.");

    public static readonly ConfigEnum<TimestepSpacing> TimestepSpacings = new(
        ("linspace", TimestepSpacing.Linspace),
        ("leading", TimestepSpacing.Leading),
        ("trailing", TimestepSpacing.Trailing));

    public static readonly ConfigEnum<FinalSigmasType> FinalSigmasTypes = new(
        ("zero", FinalSigmasType.Zero),
        ("sigma_min", FinalSigmasType.SigmaMin));

    public static readonly ConfigEnum<DpmSolverAlgorithmType> DpmSolverAlgorithms = new ConfigEnum<DpmSolverAlgorithmType>(
        ("dpmsolver", DpmSolverAlgorithmType.DpmSolver),
        ("dpmsolver++", DpmSolverAlgorithmType.DpmSolverPlusPlus),
        ("sde-dpmsolver", DpmSolverAlgorithmType.SdeDpmSolver),
        ("sde-dpmsolver++", DpmSolverAlgorithmType.SdeDpmSolverPlusPlus))
        .WithAlias("deis", DpmSolverAlgorithmType.DpmSolverPlusPlus);

    public static readonly ConfigEnum<DpmSolverType> DpmSolverTypes = new ConfigEnum<DpmSolverType>(
        ("midpoint", DpmSolverType.Midpoint),
        ("heun", DpmSolverType.Heun))
        .WithAlias("logrho", DpmSolverType.Midpoint)
        .WithAlias("bh1", DpmSolverType.Midpoint)
        .WithAlias("bh2", DpmSolverType.Midpoint);

    public static readonly ConfigEnum<UniPCSolverType> UniPCSolverTypes = new ConfigEnum<UniPCSolverType>(
        ("bh1", UniPCSolverType.Bh1),
        ("bh2", UniPCSolverType.Bh2))
        .WithAlias("midpoint", UniPCSolverType.Bh2)
        .WithAlias("heun", UniPCSolverType.Bh2)
        .WithAlias("logrho", UniPCSolverType.Bh2);

    public static readonly ConfigEnum<DdpmVarianceType> DdpmVarianceTypes = new ConfigEnum<DdpmVarianceType>(
        ("fixed_small", DdpmVarianceType.FixedSmall),
        ("fixed_small_log", DdpmVarianceType.FixedSmallLog),
        ("fixed_large", DdpmVarianceType.FixedLarge))
        .WithUnsupported("fixed_large_log", "diffusers takes the square root of a logarithm there, which is NaN.")
        .WithUnsupported("learned", "it needs a model that also predicts its variance, which Stable Diffusion's UNet does not.")
        .WithUnsupported("learned_range", "it needs a model that also predicts its variance, which Stable Diffusion's UNet does not.");

    public static readonly ConfigEnum<InterpolationType> InterpolationTypes = new(
        ("linear", InterpolationType.Linear),
        ("log_linear", InterpolationType.LogLinear));

    public static readonly ConfigEnum<TimestepType> TimestepTypes = new(
        ("discrete", TimestepType.Discrete),
        ("continuous", TimestepType.Continuous));

    // The names every class accepts unless it declares its own (SchedulerOptions.DescribeKeys). Most classes implement
    // three of the six beta schedules; DDPM and Heun widen them.
    private static readonly Dictionary<Type, IConfigEnum> Defaults = new IConfigEnum[]
    {
        StandardBetaSchedules, PredictionTypes, TimestepSpacings, FinalSigmasTypes, DpmSolverAlgorithms, DpmSolverTypes,
        UniPCSolverTypes, DdpmVarianceTypes, InterpolationTypes, TimestepTypes,
    }.ToDictionary(names => names.EnumType);

    /// <summary>The names a class accepts for an enum-typed key unless it declares others.</summary>
    public static IConfigEnum Of(Type enumType) =>
        Defaults.TryGetValue(enumType, out IConfigEnum? names)
            ? names
            : throw new InvalidOperationException($"{enumType.Name} has no diffusers names: add them to {nameof(ConfigNames)}.");
}
