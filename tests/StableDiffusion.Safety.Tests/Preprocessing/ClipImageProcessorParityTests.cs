using System.Globalization;
using System.Numerics.Tensors;
using System.Text.Json;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Safety.Tests.Preprocessing;

/// <summary>
/// The <c>safety_preprocessing</c> section of every reference: transformers' CLIPImageProcessor applied to
/// <c>numpy_to_pil(ref_images)</c> with the tiny model's preprocessor_config.json.
/// </summary>
public sealed class ClipImageProcessorParityTests
{
    private const string Section = "safety_preprocessing";

    // The targets, in normalised units; exact Pillow emulation lands at float rounding (about 1e-6).
    private const double MaxAbsTolerance = 0.03;
    private const double MeanAbsTolerance = 0.005;

    /// <summary>One row per reference that has the section (it holds one case: its images and their clip_input).</summary>
    public static IEnumerable<TheoryDataRow<string>> Cases() =>
        Reference.IsAvailable
            ? [.. Reference.Sets.Where(s => s.Root.TryGetProperty(Section, out _)).Select(s => new TheoryDataRow<string>(s.Label))]
            : Reference.CaseNames(Section);

    [Theory]
    [MemberData(nameof(Cases))]
    [Trait("Category", "Parity")]
    [Trait("Area", "Safety")]
    public void Preprocess_MatchesTransformersClipInput(string label)
    {
        Reference.Require();
        ReferenceSet set = Reference.Sets.Single(s => s.Label == label);
        JsonElement referenceCase = set.Root.GetProperty(Section);
        Reference.RequireKnownFields(referenceCase, $"{label}: {Section}", "note", "images", "clip_input", "model");
        NpyArray images = set.Array(referenceCase.GetProperty("images").GetString()!);
        NpyArray expected = set.Array(referenceCase.GetProperty("clip_input").GetString()!);
        string model = set.ResolvePath(referenceCase.TryGetProperty("model", out JsonElement m)
            ? m.GetString()!
            : set.Root.GetProperty("pipeline").GetProperty("model").GetString()!);
        var processor = ClipImageProcessor.Load(Path.Combine(model, "feature_extractor", "preprocessor_config.json"));

        Tensor<float> actual = processor.Preprocess(Tensor.Create(images.ToSingle(), [.. images.Shape.Select(d => (nint)d)]));

        Assert.Equal(expected.Shape.Select(d => (nint)d).ToArray(), actual.Lengths.ToArray());
        float[] reference = expected.ToSingle();
        ReadOnlySpan<float> values = actual.AsTensorSpan().AsReadOnlyTensorSpan().AsSpan();
        (double maxAbs, int at) = ArrayAssert.MaxAbsDifference(reference, values);
        double meanAbs = 0;
        for (int i = 0; i < reference.Length; i++)
        {
            meanAbs += Math.Abs((double)values[i] - reference[i]);
        }

        meanAbs /= reference.Length;
        TestContext.Current.SendDiagnosticMessage(string.Create(
            CultureInfo.InvariantCulture, $"{label}: clip_input max abs {maxAbs:G4} (at {at}), mean abs {meanAbs:G4} over {reference.Length} values"));
        Assert.True(maxAbs <= MaxAbsTolerance, $"{label}: max |got - ref| = {maxAbs:G6} at {at} (got {values[at]:G9}, ref {reference[at]:G9}) exceeds {MaxAbsTolerance}.");
        Assert.True(meanAbs <= MeanAbsTolerance, $"{label}: mean |got - ref| = {meanAbs:G6} exceeds {MeanAbsTolerance}.");
    }
}
