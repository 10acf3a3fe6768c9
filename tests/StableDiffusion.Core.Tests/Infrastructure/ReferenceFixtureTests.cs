using System.Text.Json;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.Infrastructure;

/// <summary>The shared fixtures and the reference outputs are where the tests expect them.</summary>
public sealed class ReferenceFixtureTests
{
    [Fact]
    public void FixtureModels_AreInTheDiffusersOnnxLayout()
    {
        Fixtures.Require();

        foreach (string model in new[] { Fixtures.TinyModel, Fixtures.TinyVariantsModel, Fixtures.TinyInpaintModel })
        {
            Assert.True(File.Exists(Path.Combine(model, "model_index.json")), $"{model} has no model_index.json");
            Assert.True(File.Exists(Path.Combine(model, "unet", "model.onnx")), $"{model} has no unet/model.onnx");
        }
    }

    [Fact]
    public void ReferenceArrays_MatchTheShapesTheirCasesDescribe()
    {
        Reference.Published.Require();

        NpyArray x0 = Reference.Published.Array("sched/x0");
        Assert.Equal([1, 4, 8, 8], x0.Shape);
        Assert.Equal(256, x0.ToSingle().Length);

        NpyArray image = Reference.Published.Array("edit/image_64x64");
        Assert.Equal("|u1", image.DType);
        Assert.Equal([64, 64, 3], image.Shape);
    }

    /// <summary>The sections some parity test reads: a reference with another section holds cases nothing would check.</summary>
    private static readonly string[] CheckedSections = ["about", "versions", "tokenizer", "rng", "schedulers", "pipeline", "safety_preprocessing", "edit", "textual_inversion", "clip_skip", "prompt_weighting", "single_file", "lora"];

    public static IEnumerable<TheoryDataRow<string>> Sets() =>
        Reference.IsAvailable ? [.. Reference.Sets.Select(s => new TheoryDataRow<string>(s.Label))] : Reference.CaseNames("pipeline");

    [Theory]
    [MemberData(nameof(Sets))]
    [Trait("Category", "Parity")]
    public void EverySection_IsOneAParityTestChecks(string label)
    {
        Reference.Require();
        JsonElement root = Reference.Sets.Single(s => s.Label == label).Root;

        Reference.RequireKnownFields(root, $"{label}: reference.json", CheckedSections);
    }
}
