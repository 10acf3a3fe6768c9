using System.Numerics.Tensors;
using Microsoft.Extensions.Logging;
using StableDiffusion.Loading;
using StableDiffusion.Models;

namespace StableDiffusion.Pipelines.Internal;

/// <summary>The prompt embeddings of one generation, laid out as the UNet sees them.</summary>
/// <param name="Embeddings">[2 * rows, sequence, hidden] with the unconditional half first when guided, else [rows, sequence, hidden].</param>
/// <param name="Rows">The number of images: prompts times images per prompt.</param>
/// <param name="SequenceLength">Positions per prompt (77, or 77 per chunk of a long weighted prompt).</param>
/// <param name="HiddenSize">The embedding width.</param>
/// <param name="Guided">Whether classifier-free guidance is on.</param>
internal sealed record EncodedPrompt(float[] Embeddings, int Rows, int SequenceLength, int HiddenSize, bool Guided)
{
    public int UNetBatch => Guided ? 2 * Rows : Rows;

    public Tensor<float> ToTensor() => Tensor.Create(Embeddings, [UNetBatch, SequenceLength, HiddenSize]);
}

/// <summary>diffusers' <c>encode_prompt</c>: tokenize, encode, repeat per image, and add the unconditional half for guidance.</summary>
internal static class PromptEncoder
{
    public static EncodedPrompt Encode(StableDiffusionComponents components, DiffusionRequest request, bool guided, GenerationScope scope, ILogger logger)
    {
        scope.Report(GenerationStage.EncodingPrompt);
        // Held while encoding: loading a textual inversion or adding the clip skip outputs replaces the text encoder.
        lock (components.TextLock)
        {
            ITextEncoding texts = components.Definition.TextEncoding(components, request, scope, logger);
            return scope.Stage(GenerationStage.EncodingPrompt, () => EncodeLocked(request, guided, texts), t => scope.PromptEncoding = t, texts.Failure);
        }
    }

    private static EncodedPrompt EncodeLocked(DiffusionRequest request, bool guided, ITextEncoding texts)
    {
        int imagesPerPrompt = request.NumImagesPerPrompt;
        int? clipSkip = request.ClipSkip;
        float[] positive;
        float[]? negative = null;
        int batch, sequence, hidden;
        if (request.PromptEmbeds is { } given)
        {
            (positive, batch, sequence, hidden) = FromTensor(given);
            if (guided)
            {
                (negative, _, _, _) = request.NegativePromptEmbeds is { } negativeGiven
                    ? FromTensor(negativeGiven)
                    : texts.Encode(NegativeTexts(request, batch), NegativeClipSkip(texts, clipSkip));
            }
        }
        else if (guided && request.NegativePromptEmbeds is null)
        {
            batch = request.Prompts.Count;
            IReadOnlyList<string> negatives = NegativeTexts(request, batch);
            if (NegativeClipSkip(texts, clipSkip) == clipSkip)
            {
                // One text-encoder call for both halves ([negatives; prompts]): CLIP's causal attention keeps rows independent,
                // and weighted prompts of one batch share their number of chunks.
                (float[] both, _, sequence, hidden) = texts.Encode([.. negatives, .. request.Prompts], clipSkip);
                int half = both.Length / 2;
                negative = both[..half];
                positive = both[half..];
            }
            else
            {
                (negative, _, _, _) = texts.Encode(negatives, clipSkip: null);
                (positive, _, sequence, hidden) = texts.Encode(request.Prompts, clipSkip);
            }
        }
        else
        {
            (positive, batch, sequence, hidden) = texts.Encode(request.Prompts, clipSkip);
            if (guided)
            {
                (negative, _, _, _) = FromTensor(request.NegativePromptEmbeds!);
            }
        }

        int rows = batch * imagesPerPrompt;
        int rowLength = sequence * hidden;
        if (negative is not null && negative.Length != positive.Length)
        {
            throw new ArgumentException(
                $"The negative prompt embeddings have {negative.Length} values but the prompt embeddings {positive.Length} ({batch} rows of [{sequence},{hidden}]): " +
                "they must have the same shape. With prompt weighting, a long negative prompt needs as many chunks of 75 tokens as the prompt.", nameof(request));
        }

        var embeddings = new float[(guided ? 2 : 1) * rows * rowLength];
        int positiveOffset = guided ? rows * rowLength : 0;
        Repeat(positive, batch, rowLength, imagesPerPrompt, embeddings.AsSpan(positiveOffset, rows * rowLength));
        if (negative is not null)
        {
            Repeat(negative, batch, rowLength, imagesPerPrompt, embeddings.AsSpan(0, rows * rowLength));
        }

        return new EncodedPrompt(embeddings, rows, sequence, hidden, guided);
    }

    // diffusers' encode_prompt applies clip_skip to the prompts only; the long-prompt-weighting pipeline to both.
    private static int? NegativeClipSkip(ITextEncoding texts, int? clipSkip) => texts.Weighted ? clipSkip : null;

    // diffusers: "" for each prompt without a negative prompt, the one negative prompt for each, or one per prompt.
    private static IReadOnlyList<string> NegativeTexts(DiffusionRequest request, int batch) =>
        request.NegativePrompts ?? Enumerable.Repeat(request.NegativePrompt ?? string.Empty, batch).ToArray();

    private static (float[] Values, int Batch, int Sequence, int Hidden) FromTensor(Tensor<float> tensor)
    {
        var values = new float[tensor.FlattenedLength];
        tensor.FlattenTo(values);
        return (values, (int)tensor.Lengths[0], (int)tensor.Lengths[1], (int)tensor.Lengths[2]);
    }

    // Each prompt's row repeated once per image, in a row (p0, p0, p1, p1), as diffusers' repeat + view gives.
    private static void Repeat(ReadOnlySpan<float> rows, int count, int rowLength, int times, Span<float> destination)
    {
        for (int r = 0; r < count; r++)
        {
            ReadOnlySpan<float> row = rows.Slice(r * rowLength, rowLength);
            for (int k = 0; k < times; k++)
            {
                row.CopyTo(destination.Slice(((r * times) + k) * rowLength, rowLength));
            }
        }
    }
}
