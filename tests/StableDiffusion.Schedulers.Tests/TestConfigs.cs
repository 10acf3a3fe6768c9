using System.Text.Json.Nodes;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Schedulers.Tests;

/// <summary>Scheduler configurations the tests start from.</summary>
internal static class TestConfigs
{
    /// <summary>Stable Diffusion 1.5's scheduler/scheduler_config.json.</summary>
    public static SchedulerConfig StableDiffusion15 => SchedulerConfig.Parse(SchedulerConfigJson.StableDiffusion15, "sd15/scheduler_config.json");

    /// <summary>Stable Diffusion 1.5's configuration for <paramref name="className"/>, with the keys of a JSON object set on top.</summary>
    public static SchedulerConfig StableDiffusion15With(string className, string overridesJson)
    {
        SchedulerConfig config = StableDiffusion15.WithClassName(className);
        foreach (var (key, value) in (JsonObject)JsonNode.Parse(overridesJson)!)
        {
            config = config.With(key, value);
        }

        return config;
    }

    /// <summary>The UI names of the factory, each built from Stable Diffusion 1.5's configuration.</summary>
    public static TheoryData<string> UiNames =>
    [
        "Euler", "Euler Karras", "Euler a", "LMS", "LMS Karras", "Heun", "Heun Karras", "DPM2", "DPM2 Karras", "DPM2 a", "DPM2 a Karras",
        "DPM++ 2M", "DPM++ 2M Karras", "DPM++ 2M SDE", "DPM++ 2M SDE Karras", "DPM++ 2S", "DPM++ 2S Karras", "DDIM", "DDPM", "PLMS", "PNDM",
        "UniPC", "DEIS", "LCM",
    ];
}

/// <summary>A noise source for tests that need one but not torch's stream: a cheap deterministic sequence, no allocation.</summary>
internal sealed class CountingGenerator : INoiseGenerator
{
    private int _next;

    public int Draws { get; private set; }

    public void FillStandardNormal(Span<float> destination)
    {
        Draws++;
        for (int i = 0; i < destination.Length; i++)
        {
            destination[i] = ((_next++ % 17) - 8) / 8f;
        }
    }

    public void FillStandardNormal(Span<double> destination) => throw new NotSupportedException();

    public void FillStandardNormal(Span<Half> destination) => throw new NotSupportedException();
}
