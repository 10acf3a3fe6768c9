using System.Numerics.Tensors;
using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;
using StableDiffusion.Models;
using StableDiffusion.Tokenization;

namespace StableDiffusion.Pipelines.Internal;

/// <summary>Stable Diffusion 1.x's text encoding: the CLIP tokenizer, then the text encoder's last hidden state.</summary>
internal sealed partial class ClipTextEncoding(ClipTokenizer tokenizer, TextEncoderModel textEncoder) : ITextEncoding
{
    // The positions of every Stable Diffusion 1.x and 2.x text encoder.
    private const int ClipSequenceLength = 77;

    public (float[] Values, int Batch, int Sequence, int Hidden) Encode(IReadOnlyList<string> texts, GenerationScope scope, ILogger logger)
    {
        int length = tokenizer.ModelMaxLength;
        var ids = new int[texts.Count * length];
        for (int i = 0; i < texts.Count; i++)
        {
            var encoding = tokenizer.Encode(texts[i]);
            if (encoding.IsTruncated)
            {
                LogTruncated(logger, length, encoding.DroppedTokenCount, encoding.DroppedText);
            }

            encoding.InputIds.Span.CopyTo(ids.AsSpan(i * length, length));
        }

        Tensor<float> hidden = textEncoder.Encode(ids, texts.Count, scope.RunOptions);
        return (hidden.AsSpan().ToArray(), texts.Count, (int)hidden.Lengths[1], (int)hidden.Lengths[2]);
    }

    public ModelRunException Failure(OnnxRuntimeException error)
    {
        int length = tokenizer.ModelMaxLength;
        string? hint = length == ClipSequenceLength
            ? null
            : $"The tokenizer pads every prompt to {length} tokens (tokenizer/tokenizer_config.json, model_max_length) but Stable Diffusion's CLIP text encoders take {ClipSequenceLength}: the tokenizer does not belong to this text encoder.";
        return ModelRunException.For(textEncoder, $"token ids of {length} tokens per prompt", error, hint);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The prompt is longer than the text encoder's {MaxLength} tokens; {Count} tokens were dropped: \"{DroppedText}\"")]
    private static partial void LogTruncated(ILogger logger, int maxLength, int count, string droppedText);
}
