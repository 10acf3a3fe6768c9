using System.Text.Json;
using StableDiffusion.Core.Tests.Pipelines;
using StableDiffusion.Pipelines;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.EndToEnd.Support;

/// <summary>A reference case the tiny model's safety checker flags (astronaut_euler: flagged in diffusers too), at 64x64.</summary>
internal static class FlaggedRequest
{
    public static TextToImageRequest Create()
    {
        JsonElement flaggedCase = Reference.Published.Case("pipeline", "astronaut_euler");
        Assert.True(flaggedCase.GetProperty("torch_nsfw")[0].GetBoolean());
        return new TextToImageRequest(flaggedCase.GetProperty("prompt").GetString()!)
        {
            Seed = flaggedCase.GetProperty("seed").GetUInt64(), NumInferenceSteps = flaggedCase.GetProperty("steps").GetInt32(),
            Height = 64, Width = 64, Scheduler = ReferenceSchedulers.Create("euler"),
        };
    }
}
