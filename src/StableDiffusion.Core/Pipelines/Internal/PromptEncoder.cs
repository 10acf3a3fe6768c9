using System.Numerics.Tensors;
using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;
using StableDiffusion.Loading;
using StableDiffusion.Models;
using StableDiffusion.Prompts;

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
internal static partial class PromptEncoder
{
    // The positions of every Stable Diffusion 1.x and 2.x text encoder.
    private const int ClipSequenceLength = 77;

    public static EncodedPrompt Encode(StableDiffusionComponents components, DiffusionRequest request, bool guided, GenerationScope scope, ILogger logger)
    {
        scope.Report(GenerationStage.EncodingPrompt);
        return scope.Stage(GenerationStage.EncodingPrompt, () => EncodeCore(components, request, guided, scope, logger), t => scope.PromptEncoding = t, error => TextEncoderFailure(components, error));
    }

    private static ModelRunException TextEncoderFailure(StableDiffusionComponents components, OnnxRuntimeException error)
    {
        int length = components.Tokenizer.ModelMaxLength;
        string? hint = length == ClipSequenceLength
            ? null
            : $"The tokenizer pads every prompt to {length} tokens (tokenizer/tokenizer_config.json, model_max_length) but Stable Diffusion's CLIP text encoders take {ClipSequenceLength}: the tokenizer does not belong to this text encoder.";
        return ModelRunException.For(components.TextEncoder, $"token ids of {length} tokens per prompt", error, hint);
    }

    private static EncodedPrompt EncodeCore(StableDiffusionComponents components, DiffusionRequest request, bool guided, GenerationScope scope, ILogger logger)
    {
        // Held while encoding: loading a textual inversion or adding the clip skip outputs replaces the text encoder.
        lock (components.TextLock)
        {
            var texts = new TextEncoding(components, request, scope, logger);
            return EncodeLocked(request, guided, texts);
        }
    }

    private static EncodedPrompt EncodeLocked(DiffusionRequest request, bool guided, TextEncoding texts)
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
    private static int? NegativeClipSkip(TextEncoding texts, int? clipSkip) => texts.Weighted ? clipSkip : null;

    // diffusers: "" for each prompt without a negative prompt, the one negative prompt for each, or one per prompt.
    private static IReadOnlyList<string> NegativeTexts(DiffusionRequest request, int batch) =>
        request.NegativePrompts ?? Enumerable.Repeat(request.NegativePrompt ?? string.Empty, batch).ToArray();

    /// <summary>Prompts to hidden states, plainly (diffusers) or with the web UI syntax and chunks (prompt weighting).</summary>
    private sealed class TextEncoding
    {
        private readonly StableDiffusionComponents _components;
        private readonly GenerationScope _scope;
        private readonly ILogger _logger;

        public TextEncoding(StableDiffusionComponents components, DiffusionRequest request, GenerationScope scope, ILogger logger)
        {
            _components = components;
            _scope = scope;
            _logger = logger;
            Weighted = request.PromptWeighting ?? components.Options.PromptWeighting;
            if (request.ClipSkip is int clipSkip)
            {
                components.RequireClipSkipOutputs();
                int layers = components.TextEncoder.MaxClipSkip;
                if (clipSkip > layers)
                {
                    throw new ArgumentOutOfRangeException(nameof(request), clipSkip,
                        $"ClipSkip is {clipSkip} but the text encoder has {layers} layers: use 1 to {layers} (diffusers' count; a web UI's \"Clip skip: 2\" is 1).");
                }
            }
        }

        public bool Weighted { get; }

        public (float[] Values, int Batch, int Sequence, int Hidden) Encode(IReadOnlyList<string> texts, int? clipSkip)
        {
            (int[] ids, float[]? weights, int chunks) = Weighted ? WeightedIds(texts) : PlainIds(texts);
            Tensor<float> states = _components.TextEncoder.Encode(ids, texts.Count * chunks, _scope.RunOptions, clipSkip);
            float[] values = states.AsSpan().ToArray();
            int positions = chunks * (int)states.Lengths[1];
            int width = (int)states.Lengths[2];
            if (weights is not null)
            {
                for (int row = 0; row < texts.Count; row++)
                {
                    PromptChunks.ApplyWeights(values.AsSpan(row * positions * width, positions * width), weights.AsSpan(row * positions, positions));
                }
            }

            return (values, texts.Count, positions, width);
        }

        private (int[] Ids, float[]? Weights, int Chunks) PlainIds(IReadOnlyList<string> texts)
        {
            int length = _components.Tokenizer.ModelMaxLength;
            var ids = new int[texts.Count * length];
            for (int i = 0; i < texts.Count; i++)
            {
                var encoding = _components.Tokenizer.Encode(texts[i]);
                if (encoding.IsTruncated)
                {
                    // A huge prompt must not flood the log: the start of what was dropped says enough.
                    LogTruncated(_logger, length, encoding.DroppedTokenCount, encoding.DroppedText.Length <= 100 ? encoding.DroppedText : $"{encoding.DroppedText.AsSpan(0, 100)}…");
                }

                encoding.InputIds.Span.CopyTo(ids.AsSpan(i * length, length));
            }

            return (ids, null, 1);
        }

        private (int[] Ids, float[]? Weights, int Chunks) WeightedIds(IReadOnlyList<string> texts)
        {
            // A static shape fixes the UNet's sequence at one chunk.
            int maxChunks = _components.Options.StaticShape is null ? PromptChunks.DefaultMaxChunks : 1;
            var prompts = new WeightedTokens[texts.Count];
            for (int i = 0; i < texts.Count; i++)
            {
                prompts[i] = PromptChunks.Tokenize(_components.Tokenizer, texts[i], maxChunks, out bool truncated);
                if (truncated)
                {
                    LogWeightedTruncated(_logger, maxChunks, maxChunks * (_components.Tokenizer.ModelMaxLength - 2), texts[i]);
                }
            }

            int chunks = PromptChunks.ChunkCount(_components.Tokenizer, prompts);
            (int[] ids, float[] weights) = PromptChunks.Layout(_components.Tokenizer, prompts, chunks);
            return (ids, weights, chunks);
        }
    }

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

    [LoggerMessage(Level = LogLevel.Warning, Message = "The prompt is longer than the text encoder's {MaxLength} tokens; {Count} tokens were dropped: \"{DroppedText}\"")]
    private static partial void LogTruncated(ILogger logger, int maxLength, int count, string droppedText);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The weighted prompt is longer than {Chunks} chunks ({MaxTokens} tokens) and was truncated: \"{Prompt}\"")]
    private static partial void LogWeightedTruncated(ILogger logger, int chunks, int maxTokens, string prompt);
}
