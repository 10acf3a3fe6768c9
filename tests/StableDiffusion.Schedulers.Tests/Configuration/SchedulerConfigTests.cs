using StableDiffusion.Schedulers;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Schedulers.Tests.Configuration;

public sealed class SchedulerConfigTests
{
    private const string Sd15 = SchedulerConfigJson.StableDiffusion15;

    [Fact]
    public void Parse_ReadsClassNameAndExplicitKeysOnly()
    {
        SchedulerConfig config = SchedulerConfig.Parse(Sd15);

        Assert.Equal("PNDMScheduler", config.ClassName);
        Assert.True(config.Contains("steps_offset"));
        Assert.True(config.Contains("trained_betas"));
        Assert.False(config.Contains("_diffusers_version"));
        Assert.False(config.Contains("timestep_spacing"));
    }

    [Fact]
    public void Parse_TreatsUseDefaultValuesKeysAsAbsent()
    {
        SchedulerConfig config = SchedulerConfig.Parse("""
            { "_class_name": "PNDMScheduler", "timestep_spacing": "leading", "prediction_type": "epsilon",
              "steps_offset": 1, "_use_default_values": "['timestep_spacing', 'prediction_type']" }
            """);

        Assert.False(config.Contains("timestep_spacing"));
        Assert.False(config.Contains("prediction_type"));
        Assert.True(config.Contains("steps_offset"));
    }

    [Fact]
    public void Parse_AcceptsPythonsNamedFloatingPointLiterals()
    {
        // diffusers saves DPMSolverMultistepScheduler's default lambda_min_clipped as a bare -Infinity.
        SchedulerConfig config = SchedulerConfig.Parse("""
            { "_class_name": "DPMSolverMultistepScheduler", "lambda_min_clipped": -Infinity, "note": "NaN stays text" }
            """);

        Assert.True(config.TryGetValue("lambda_min_clipped", out var value));
        Assert.Equal("-Infinity", value!.GetValue<string>());
        Assert.True(config.TryGetValue("note", out var note));
        Assert.Equal("NaN stays text", note!.GetValue<string>());
    }

    [Theory]
    [InlineData("not json", "not valid JSON")]
    [InlineData("[1, 2]", "must be a JSON object")]
    [InlineData("{ \"beta_start\": 0.1 }", "_class_name")]
    public void Parse_RejectsMalformedConfigWithSpecificMessage(string json, string expected)
    {
        var ex = Assert.Throws<SchedulerConfigException>(() => SchedulerConfig.Parse(json, "test.json"));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.Contains("test.json", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void With_ReturnsNewConfigAndLeavesOriginalUnchanged()
    {
        SchedulerConfig original = SchedulerConfig.Parse(Sd15);
        SchedulerConfig karras = original.With("use_karras_sigmas", true).WithClassName("EulerDiscreteScheduler");

        Assert.False(original.Contains("use_karras_sigmas"));
        Assert.Equal("PNDMScheduler", original.ClassName);
        Assert.True(karras.Contains("use_karras_sigmas"));
        Assert.Equal("EulerDiscreteScheduler", karras.ClassName);
    }

    [Fact]
    public void ToJson_RoundTrips()
    {
        SchedulerConfig config = SchedulerConfig.Parse(Sd15);
        SchedulerConfig again = SchedulerConfig.Parse(config.ToJson());

        Assert.Equal(config.ClassName, again.ClassName);
        Assert.Equal(config.Keys.Order(), again.Keys.Order());
    }
}
