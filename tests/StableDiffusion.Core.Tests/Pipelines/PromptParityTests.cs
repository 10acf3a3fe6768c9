using System.Text.Json;
using Google.Protobuf;
using StableDiffusion.Onnx;
using StableDiffusion.Pipelines;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.Pipelines;

/// <summary>Textual inversion cases: embeddings loaded as diffusers' <c>load_textual_inversion</c> loads them, same images and embeddings.</summary>
[Trait("Category", "Parity")]
[Trait("Area", "TextualInversion")]
public sealed class TextualInversionParityTests
{
    public static IEnumerable<TheoryDataRow<string>> Cases() => Reference.CaseNames("textual_inversion");

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Case_MatchesDiffusers(string id)
    {
        (ReferenceSet set, JsonElement c) = Reference.Case("textual_inversion", id);
        Reference.RequireKnownFields(set.Root.GetProperty("textual_inversion"), $"{set.Label}: textual_inversion", PromptCases.SectionFields);
        Reference.RequireKnownFields(c, id, [.. PromptCases.CaseFields, "embeddings"]);
        using StableDiffusionPipeline pipe = await PromptCases.LoadAsync(set, "textual_inversion");
        foreach (JsonElement embedding in c.GetProperty("embeddings").EnumerateArray())
        {
            Reference.RequireKnownFields(embedding, $"{id}: embeddings", "file", "token");
            pipe.LoadTextualInversion(set.ResolvePath(embedding.GetProperty("file").GetString()!),
                embedding.TryGetProperty("token", out JsonElement token) ? token.GetString() : null);
        }

        await PromptCases.RunAndAssertAsync(pipe, set, c, PromptCases.Request(set, c), $"ti/{c.GetProperty("name").GetString()}", id);
    }
}

/// <summary>Clip skip cases: diffusers' <c>clip_skip</c> (the prompt only; the negative prompt keeps the last layer).</summary>
[Trait("Category", "Parity")]
[Trait("Area", "PromptWeighting")]
public sealed class ClipSkipParityTests
{
    public static IEnumerable<TheoryDataRow<string>> Cases() => Reference.CaseNames("clip_skip");

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Case_MatchesDiffusers(string id)
    {
        (ReferenceSet set, JsonElement c) = Reference.Case("clip_skip", id);
        Reference.RequireKnownFields(set.Root.GetProperty("clip_skip"), $"{set.Label}: clip_skip", PromptCases.SectionFields);
        Reference.RequireKnownFields(c, id, [.. PromptCases.CaseFields, "clip_skip"]);
        using StableDiffusionPipeline pipe = await PromptCases.LoadAsync(set, "clip_skip");
        TextToImageRequest request = PromptCases.Request(set, c) with { ClipSkip = c.GetProperty("clip_skip").GetInt32() };

        await PromptCases.RunAndAssertAsync(pipe, set, c, request, $"clip_skip/{c.GetProperty("name").GetString()}", id);
    }
}

/// <summary>
/// Weighted and long prompts: diffusers' long-prompt-weighting community pipeline's images and embeddings, with the
/// text encoder tensors the section overrides (a final layer norm with weights: the tiny model's is the identity, which
/// leaves the mean restoration a ratio of two means near zero) written into a copy of the model.
/// </summary>
[Trait("Category", "Parity")]
[Trait("Area", "PromptWeighting")]
public sealed class PromptWeightingParityTests
{
    public static IEnumerable<TheoryDataRow<string>> Cases() => Reference.CaseNames("prompt_weighting");

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Case_MatchesDiffusers(string id)
    {
        (ReferenceSet set, JsonElement c) = Reference.Case("prompt_weighting", id);
        JsonElement section = set.Root.GetProperty("prompt_weighting");
        Reference.RequireKnownFields(section, $"{set.Label}: prompt_weighting", [.. PromptCases.SectionFields, "text_encoder_overrides"]);
        Reference.RequireKnownFields(c, id, [.. PromptCases.CaseFields, "max_embeddings_multiples"]);
        Assert.True(c.GetProperty("max_embeddings_multiples").GetInt32() == 3, $"{id}: the SDK weights prompts with the community pipeline's default of 3 chunks, not {c.GetProperty("max_embeddings_multiples")}.");
        string model = set.ResolvePath(section.GetProperty("model").GetString()!);
        using var copy = new ModelCopy(model);
        if (section.TryGetProperty("text_encoder_overrides", out JsonElement overrides))
        {
            copy.OverrideTextEncoder(overrides.EnumerateObject().ToDictionary(o => o.Name, o => set.Array(o.Value.GetString()!).ToSingle()));
        }

        using StableDiffusionPipeline pipe = await StableDiffusionPipeline.FromPretrainedAsync(copy.Folder, cancellationToken: TestContext.Current.CancellationToken);
        TextToImageRequest request = PromptCases.Request(set, c) with { PromptWeighting = true };

        await PromptCases.RunAndAssertAsync(pipe, set, c, request, $"lpw/{c.GetProperty("name").GetString()}", id, combinedEmbeds: true);
    }

    /// <summary>A temporary copy of a model folder whose text encoder can be changed.</summary>
    private sealed class ModelCopy : IDisposable
    {
        public ModelCopy(string source)
        {
            Folder = Directory.CreateTempSubdirectory("sd-lpw-model-").FullName;
            foreach (string file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
            {
                string target = Path.Combine(Folder, Path.GetRelativePath(source, file));
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                File.Copy(file, target);
            }
        }

        public string Folder { get; }

        // Sets the tensors diffusers names (with or without transformers' text_model. prefix): a new initializer, read by
        // the nodes that read the old one, or by the Identity node the exporter wrote for a deduplicated weight.
        public void OverrideTextEncoder(Dictionary<string, float[]> tensors)
        {
            string path = Path.Combine(Folder, "text_encoder", "model.onnx");
            ModelProto model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
            foreach ((string name, float[] values) in tensors)
            {
                string[] names = [name, name.Replace("text_model.", string.Empty, StringComparison.Ordinal)];
                string replaced = model.Graph.Initializer.Select(t => t.Name).Concat(model.Graph.Node.Where(n => n.OpType == "Identity").SelectMany(n => n.Output))
                    .FirstOrDefault(names.Contains)
                    ?? throw new InvalidOperationException($"The text encoder '{path}' has no tensor '{name}'.");
                var tensor = new TensorProto { Name = replaced + "/override", DataType = 1, RawData = ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan())) };
                tensor.Dims.Add(values.Length);
                model.Graph.Initializer.Add(tensor);
                foreach (NodeProto node in model.Graph.Node)
                {
                    if (node.OpType == "Identity" && node.Output.Contains(replaced))
                    {
                        node.Input[0] = tensor.Name;
                    }

                    for (int i = 0; i < node.Input.Count; i++)
                    {
                        if (node.Input[i] == replaced && node.OpType != "Identity")
                        {
                            node.Input[i] = tensor.Name;
                        }
                    }
                }
            }

            File.WriteAllBytes(path, model.ToByteArray());
        }

        public void Dispose() => Directory.Delete(Folder, recursive: true);
    }
}

/// <summary>What the prompt sections share: their fields, request and checks.</summary>
internal static class PromptCases
{
    public static readonly string[] SectionFields = ["model", "torch_model", "note", "cases"];

    public static readonly string[] CaseFields = [.. ReferenceCases.CallFields, "height", "width", "timesteps"];

    public static Task<StableDiffusionPipeline> LoadAsync(ReferenceSet set, string section) =>
        StableDiffusionPipeline.FromPretrainedAsync(set.ResolvePath(set.Root.GetProperty(section).GetProperty("model").GetString()!),
            cancellationToken: TestContext.Current.CancellationToken);

    public static TextToImageRequest Request(ReferenceSet set, JsonElement c) =>
        ReferenceCases.WithCallSettings(new TextToImageRequest(ReferenceCases.Prompts(c)), set, c, null) with
        {
            Height = c.GetProperty("height").GetInt32(),
            Width = c.GetProperty("width").GetInt32(),
        };

    /// <summary>Runs the request; the images, flags, timesteps and prompt embeddings must be diffusers'.</summary>
    /// <param name="combinedEmbeds">Whether the arrays hold one <c>embeds</c> ([negative; prompt]) rather than <c>prompt_embeds</c> and <c>negative_prompt_embeds</c>.</param>
    public static async Task RunAndAssertAsync(StableDiffusionPipeline pipe, ReferenceSet set, JsonElement c, TextToImageRequest request, string arrays, string id, bool combinedEmbeds = false)
    {
        var seen = new List<float>();
        using GenerationResult result = await pipe.GenerateAsync(request with { OnStepEnd = step => seen.Add(step.Timestep) }, TestContext.Current.CancellationToken);

        ReferenceCases.AssertTimesteps(c.GetProperty("timesteps"), seen, id);
        ReferenceCases.AssertMatches(set, $"{arrays}/torch_images", c, result, id);
        float[] embeds = result.PromptEmbeds.AsSpan().ToArray();
        if (combinedEmbeds)
        {
            ArrayAssert.Close(set.Array($"{arrays}/embeds").ToSingle(), embeds, 1e-5, $"{id}: embeds");
            return;
        }

        float[] positive = set.Array($"{arrays}/prompt_embeds").ToSingle();
        float[] negative = set.Array($"{arrays}/negative_prompt_embeds").ToSingle();
        ArrayAssert.Close(negative, embeds.AsSpan(0, negative.Length), 1e-5, $"{id}: negative prompt embeds");
        ArrayAssert.Close(positive, embeds.AsSpan(negative.Length, positive.Length), 1e-5, $"{id}: prompt embeds");
    }
}
