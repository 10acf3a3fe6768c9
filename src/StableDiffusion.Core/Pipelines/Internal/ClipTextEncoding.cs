using System.Numerics.Tensors;
using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;
using StableDiffusion.Loading;
using StableDiffusion.Models;
using StableDiffusion.Prompts;

namespace StableDiffusion.Pipelines.Internal;

/// <summary>
/// Stable Diffusion 1.x's text encoding: the CLIP tokenizer, then the text encoder's last hidden state (or an earlier one
/// for clip skip), plainly as diffusers does or with the web UI syntax and chunks (prompt weighting). Made per generation,
/// with the components' text lock held: the tokenizer and text encoder are read live, since textual inversion replaces them.
/// </summary>
internal sealed partial class ClipTextEncoding : ITextEncoding
{
    // The positions of every Stable Diffusion 1.x and 2.x text encoder.
    private const int ClipSequenceLength = 77;

    private readonly StableDiffusionComponents _components;
    private readonly GenerationScope _scope;
    private readonly ILogger _logger;

    public ClipTextEncoding(StableDiffusionComponents components, DiffusionRequest request, GenerationScope scope, ILogger logger)
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

    public ModelRunException Failure(OnnxRuntimeException error)
    {
        int length = _components.Tokenizer.ModelMaxLength;
        string? hint = length == ClipSequenceLength
            ? null
            : $"The tokenizer pads every prompt to {length} tokens (tokenizer/tokenizer_config.json, model_max_length) but Stable Diffusion's CLIP text encoders take {ClipSequenceLength}: the tokenizer does not belong to this text encoder.";
        return ModelRunException.For(_components.TextEncoder, $"token ids of {length} tokens per prompt", error, hint);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The prompt is longer than the text encoder's {MaxLength} tokens; {Count} tokens were dropped: \"{DroppedText}\"")]
    private static partial void LogTruncated(ILogger logger, int maxLength, int count, string droppedText);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The weighted prompt is longer than {Chunks} chunks ({MaxTokens} tokens) and was truncated: \"{Prompt}\"")]
    private static partial void LogWeightedTruncated(ILogger logger, int chunks, int maxTokens, string prompt);
}
