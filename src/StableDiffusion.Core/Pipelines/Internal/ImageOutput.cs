using System.Numerics.Tensors;
using Microsoft.Extensions.Logging;
using StableDiffusion.Imaging;
using StableDiffusion.Loading;
using StableDiffusion.Models;

namespace StableDiffusion.Pipelines.Internal;

/// <summary>Steps 8 to 10 of diffusers' pipelines: decode the latents, run the safety checker, make images.</summary>
internal static class ImageOutput
{
    /// <summary>Decodes, checks and converts the final latents into the call's result.</summary>
    public static GenerationResult Finish(StableDiffusionComponents components, float[] latents, LatentShape shape, EncodedPrompt prompt, ulong? seed,
        Func<IReadOnlyList<GenerationParameters>> parameters, GenerationScope scope, ILogger logger)
    {
        scope.Report(GenerationStage.Decoding);
        Tensor<float> decoded = scope.Stage(GenerationStage.Decoding, () => Decode(components, latents, shape, scope), t => scope.Decoding = t,
            error => ModelRunException.For(components.VaeDecoder, $"latents {shape}", error));
        scope.Report(GenerationStage.SafetyChecking);
        (Tensor<float> images, IReadOnlyList<bool>? flags) = scope.Stage(GenerationStage.SafetyChecking, () => CheckSafety(components, decoded, scope), t => scope.SafetyChecking = t);
        var result = new GenerationResult(ToImages(images), parameters, images, flags,
            Tensor.Create(latents, shape.ToLengths()), prompt.ToTensor(), seed, scope.Timings());
        scope.Complete(result);
        GenerationLog.Finished(logger, result);
        return result;
    }

    /// <summary>
    /// Decodes latents of <paramref name="shape"/> to NHWC images in [0, 1]: <c>clamp(decode(latents / scaling) / 2 + 0.5, 0, 1)</c>,
    /// in one run, or one image per run with <see cref="StableDiffusionPipelineOptions.EnableVaeSlicing"/>.
    /// </summary>
    public static Tensor<float> Decode(StableDiffusionComponents components, float[] latents, LatentShape shape, GenerationScope scope)
    {
        var scaled = new float[latents.Length];
        TensorPrimitives.Divide(latents, components.Configuration.ScalingFactor, scaled);
        if (!components.Options.EnableVaeSlicing || shape.Batch == 1)
        {
            return ToNhwcUnitRange(components.VaeDecoder.Decode(new ReadOnlyTensorSpan<float>(scaled, shape.ToLengths()), scope.RunOptions));
        }

        LatentShape one = shape.WithBatch(1);
        float[]? images = null;
        nint[] imageLengths = [];
        for (int i = 0; i < shape.Batch; i++)
        {
            scope.CancellationToken.ThrowIfCancellationRequested();
            var latent = new ReadOnlyTensorSpan<float>(scaled.AsSpan(i * one.ElementCount, one.ElementCount), one.ToLengths());
            Tensor<float> image = components.VaeDecoder.Decode(latent, scope.RunOptions);
            if (images is null)
            {
                imageLengths = [shape.Batch, image.Lengths[1], image.Lengths[2], image.Lengths[3]];
                images = new float[checked(shape.Batch * (int)image.FlattenedLength)];
            }

            image.AsSpan().CopyTo(images.AsSpan(i * (int)image.FlattenedLength));
        }

        return ToNhwcUnitRange(Tensor.Create(images!, imageLengths));
    }

    /// <summary>NCHW in [-1, 1] to NHWC in [0, 1]: <c>clamp(x * 0.5 + 0.5, 0, 1)</c>, the operations in diffusers' order.</summary>
    public static Tensor<float> ToNhwcUnitRange(Tensor<float> nchw)
    {
        int batch = (int)nchw.Lengths[0], channels = (int)nchw.Lengths[1], height = (int)nchw.Lengths[2], width = (int)nchw.Lengths[3];
        int plane = height * width;
        float[] nhwc = GC.AllocateUninitializedArray<float>(checked(batch * channels * plane));
        // One pass that reads each channel's row and writes the interleaved row, rows in parallel: three separate passes and a
        // strided transpose took 5 ms of one 512 x 512 image's decode stage on the GPU machine's host (10 ms at four images).
        Parallel.For(0, batch * height, row =>
        {
            ReadOnlySpan<float> values = nchw.AsSpan();
            int imageStart = row / height * plane * channels;
            int rowStart = row % height * width;
            Span<float> destination = nhwc.AsSpan(imageStart + (rowStart * channels), width * channels);
            for (int c = 0; c < channels; c++)
            {
                ReadOnlySpan<float> source = values.Slice(imageStart + (c * plane) + rowStart, width);
                for (int x = 0, o = c; x < source.Length; x++, o += channels)
                {
                    destination[o] = Math.Clamp((source[x] * 0.5f) + 0.5f, 0f, 1f);
                }
            }
        });
        return Tensor.Create(nhwc, [batch, height, width, channels]);
    }

    /// <summary>
    /// Runs the safety checker: the images with flagged ones blacked out (the checker's copy, used as is rather than copied
    /// back) and the flags; the images unchanged and null flags when the checker is off.
    /// </summary>
    public static (Tensor<float> Images, IReadOnlyList<bool>? Flags) CheckSafety(StableDiffusionComponents components, Tensor<float> images, GenerationScope scope)
    {
        if (components.SafetyChecker is not { } checker)
        {
            return (images, null);
        }

        var result = components.SafetyThread is { } thread
            ? thread.Invoke(() => checker.Check(images, scope.CancellationToken))
            : checker.Check(images, scope.CancellationToken);
        return (result.Images, result.HasNsfwConcepts);
    }

    /// <summary>NHWC floats in [0, 1] to RGB images: <c>round(x * 255)</c> with numpy's round-half-to-even.</summary>
    public static IReadOnlyList<RgbImage> ToImages(Tensor<float> images)
    {
        int batch = (int)images.Lengths[0], height = (int)images.Lengths[1], width = (int)images.Lengths[2];
        ReadOnlySpan<float> values = images.AsSpan();
        var result = new RgbImage[batch];
        int length = height * width * RgbImage.BytesPerPixel;
        for (int b = 0; b < batch; b++)
        {
            var bytes = new byte[length];
            RgbImage.Quantize(values.Slice(b * length, length), bytes);
            result[b] = RgbImage.Wrap(bytes, width, height);
        }

        return result;
    }
}
