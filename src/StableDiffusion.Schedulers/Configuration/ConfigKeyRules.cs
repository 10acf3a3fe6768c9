using System.Text.Json.Nodes;

namespace StableDiffusion.Schedulers;

/// <summary>
/// What an options record says about its configuration keys beyond its properties (see
/// <see cref="SchedulerOptions.DescribeKeys"/>): the enum names the class accepts where they differ from
/// <see cref="ConfigNames"/>, and the diffusers keys it reads without a property.
/// </summary>
internal sealed class ConfigKeyRules
{
    /// <summary>Why the flow-matching keys are refused.</summary>
    public const string FlowMatching = "flow-matching sigmas and dynamic shifting are for flow models (SD3, Flux), outside the scope of this package.";

    /// <summary>Why learned variances are refused.</summary>
    public const string LearnedVariance = "it is for models that also predict their variance, which Stable Diffusion's UNet does not.";

    private readonly Dictionary<string, IConfigEnum> _names = new(StringComparer.Ordinal);
    private readonly List<ConfigKey> _extraKeys = [];

    /// <summary>The keys declared here that have no property, in declaration order.</summary>
    public IReadOnlyList<ConfigKey> ExtraKeys => _extraKeys;

    /// <summary>The names the class accepts for the enum property <paramref name="property"/>.</summary>
    /// <param name="property">The property's name (<c>nameof</c>).</param>
    /// <param name="names">The accepted names.</param>
    public ConfigKeyRules Names<TEnum>(string property, ConfigEnum<TEnum> names)
        where TEnum : struct, Enum
    {
        _names[property] = names;
        return this;
    }

    /// <summary>
    /// A string key without a property that must be one of <paramref name="accepted"/>: the class behaves the same for all
    /// of them, and diffusers writes the first (canonical) one into its config.
    /// </summary>
    public ConfigKeyRules OneOf(string key, params string[] accepted)
    {
        _extraKeys.Add(ConfigKey.OneOf(key, accepted));
        return this;
    }

    /// <summary>A key without a property that this package only accepts at one value, with the reason other values are not supported.</summary>
    public ConfigKeyRules Only(string key, JsonNode? accepted, string reason)
    {
        _extraKeys.Add(ConfigKey.Only(key, accepted, reason));
        return this;
    }

    /// <summary>
    /// Refuses the flow-matching keys of the multistep solvers (<c>use_flow_sigmas</c>, <c>use_dynamic_shifting</c>); their
    /// companions <c>flow_shift</c> and <c>time_shift_type</c> only matter with them, so any value passes.
    /// </summary>
    public ConfigKeyRules RejectFlowMatching() => Only("use_flow_sigmas", JsonValue.Create(false), FlowMatching)
        .Only("use_dynamic_shifting", JsonValue.Create(false), FlowMatching);

    /// <summary>The names the class accepts for an enum property: its own, else the defaults of the enum.</summary>
    public IConfigEnum NamesOf(string property, Type enumType)
    {
        if (!_names.TryGetValue(property, out IConfigEnum? names))
        {
            return ConfigNames.Of(enumType);
        }

        return names.EnumType == enumType
            ? names
            : throw new InvalidOperationException($"The names given for {property} are {names.EnumType.Name} names, but the property is a {enumType.Name}.");
    }

    /// <summary>Whether the class implements <paramref name="value"/> of the enum property <paramref name="property"/>.</summary>
    public bool Implements<TEnum>(string property, TEnum value)
        where TEnum : struct, Enum =>
        NamesOf(property, typeof(TEnum)).Accepts(value);
}
