using System.Diagnostics;
using System.Numerics.Tensors;
using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;
using StableDiffusion.Imaging;
using StableDiffusion.Loading;
using StableDiffusion.Models;
using StableDiffusion.Schedulers;

namespace StableDiffusion.Pipelines.Internal;

/// <summary>
/// What differs between the pipelines inside the loop: how the UNet sample is built and what happens after a step. Inputs
/// the UNet takes besides the sample come from the request's <see cref="DiffusionRequest.UNetInputs"/>.
/// </summary>
internal class DenoisingHooks
{
    public static readonly DenoisingHooks None = new();

    /// <summary>Whether <see cref="ComposeInput"/> builds the UNet sample; otherwise the scaled latents are the sample.</summary>
    public virtual bool ComposesInput => false;

    /// <summary>The UNet sample's shape for the scaled latent input of shape <paramref name="input"/> (more channels for inpainting UNets).</summary>
    public virtual LatentShape UNetSample(LatentShape input) => input;

    /// <summary>Builds the UNet sample from the scaled latent input [batch, latent channels, h, w].</summary>
    public virtual void ComposeInput(ReadOnlySpan<float> scaledInput, Span<float> unetSample) => throw new NotSupportedException();

    /// <summary>Runs after each scheduler step on the latents [rows, latent channels, h, w].</summary>
    public virtual void AfterStep(int index, IReadOnlyList<float> timesteps, Span<float> latents)
    {
    }
}

/// <summary>Step 7 of diffusers' pipelines: the denoising loop with classifier-free guidance.</summary>
internal static partial class DenoisingLoop
{
    /// <summary>Denoises <paramref name="latents"/> of shape <paramref name="shape"/> in place over <paramref name="timesteps"/>.</summary>
    public static void Run(StableDiffusionComponents components, IScheduler scheduler, IReadOnlyList<float> timesteps, EncodedPrompt prompt,
        float[] latents, LatentShape shape, DiffusionRequest request, INoiseGenerator generator, DenoisingHooks hooks, GenerationScope scope, ILogger logger)
    {
        scope.Report(GenerationStage.Denoising, 0, timesteps.Count);
        scope.Activity?.SetTag("stablediffusion.steps", timesteps.Count);
        scope.Activity?.SetTag("stablediffusion.latents", shape.ToString());
        LatentShape sample = hooks.UNetSample(shape.WithBatch(prompt.UNetBatch));
        scope.Stage(GenerationStage.Denoising, () =>
        {
            RunCore(components, scheduler, timesteps, prompt, latents, shape, request, generator, hooks, scope, logger);
            return true;
        }, t => scope.Denoising = t, error => UNetFailure(components, sample, error));
    }

    private static ModelRunException UNetFailure(StableDiffusionComponents components, LatentShape sample, OnnxRuntimeException error)
    {
        int scale = components.Configuration.VaeScaleFactor;
        string inputs = $"latents {sample} (a {sample.Width * scale}x{sample.Height * scale} image)";
        // Exports traced at 512x512 upsample by fixed factors: their skip connections only line up for latents divisible by 8.
        string? hint = sample.Height % 8 == 0 && sample.Width % 8 == 0
            ? null
            : $"UNet exports usually need the height and width to be multiples of {8 * scale}: try Height = {RoundUp(sample.Height, 8) * scale} and Width = {RoundUp(sample.Width, 8) * scale}.";
        return ModelRunException.For(components.UNet, inputs, error, hint);
    }

    private static int RoundUp(int value, int multiple) => (value + multiple - 1) / multiple * multiple;

    private static void RunCore(StableDiffusionComponents components, IScheduler scheduler, IReadOnlyList<float> timesteps, EncodedPrompt prompt,
        float[] latents, LatentShape shape, DiffusionRequest request, INoiseGenerator generator, DenoisingHooks hooks, GenerationScope scope, ILogger logger)
    {
        int latentLength = shape.ElementCount;
        nint[] latentLengths = shape.ToLengths();
        LatentShape input = shape.WithBatch(prompt.UNetBatch);
        nint[] inputLengths = input.ToLengths();
        bool halfLatents = components.UNet.SampleType == TensorElementType.Float16;

        using UNetInvocation unet = components.UNet.CreateInvocation(hooks.UNetSample(input), shape.Channels,
            prompt.ToTensor(), request.UNetInputs, nameof(request.UNetInputs), scope.CancellationToken);
        // The scaled latents go straight into the UNet's input unless the pipeline adds channels (inpainting UNets).
        float[]? staging = hooks.ComposesInput ? new float[input.ElementCount] : null;
        var guidedNoise = prompt.Guided ? new float[latentLength] : null;
        var stepOptions = new SchedulerStepOptions(generator, request.Eta);
        var context = new StepEndContext(Tensor.Create(latents, latentLengths), timesteps.Count);
        Half[]? halfScratch = halfLatents ? new Half[latentLength] : null;
        bool warnedTruncation = false;

        for (int i = 0; i < timesteps.Count; i++)
        {
            scope.CancellationToken.ThrowIfCancellationRequested();
            float t = timesteps[i];
            if (components.UNet.HasIntegerTimestep && t != MathF.Truncate(t) && !warnedTruncation)
            {
                warnedTruncation = true;
                LogTimestepTruncated(logger, t);
            }

            // Expand the latents for guidance ([latents, latents]) and scale them for the model.
            long schedulerStart = Stopwatch.GetTimestamp();
            Span<float> scaled = staging ?? unet.Sample;
            latents.AsSpan(0, latentLength).CopyTo(scaled);
            if (prompt.Guided)
            {
                latents.AsSpan(0, latentLength).CopyTo(scaled[latentLength..]);
            }

            var scaledSpan = new TensorSpan<float>(scaled[..input.ElementCount], inputLengths);
            scheduler.ScaleModelInput(scaledSpan, t, scaledSpan);
            scope.AddSchedulerTime(schedulerStart);
            if (staging is not null)
            {
                hooks.ComposeInput(staging, unet.Sample);
            }

            scope.RunUNet(unet, new UNetStep(i, timesteps.Count, t, prompt.Guided));

            // Guidance: uncond + g * (text - uncond), optionally rescaled.
            ReadOnlySpan<float> prediction = unet.NoisePrediction;
            ReadOnlySpan<float> noise = prediction[..latentLength];
            if (guidedNoise is not null)
            {
                ReadOnlySpan<float> uncond = prediction[..latentLength];
                ReadOnlySpan<float> text = prediction.Slice(latentLength, latentLength);
                ClassifierFreeGuidance.Combine(uncond, text, request.GuidanceScale, guidedNoise);
                if (request.GuidanceRescale > 0)
                {
                    RescaleNoise(guidedNoise, text, shape.Batch, request.GuidanceRescale);
                }

                noise = guidedNoise;
            }

            schedulerStart = Stopwatch.GetTimestamp();
            scheduler.Step(new ReadOnlyTensorSpan<float>(noise, latentLengths), t,
                new ReadOnlyTensorSpan<float>(latents, latentLengths), new TensorSpan<float>(latents, latentLengths), stepOptions);
            if (halfLatents)
            {
                // fp16 pipelines keep the latents in half precision between steps, as diffusers does.
                TensorPrimitives.ConvertToHalf(latents.AsSpan(0, latentLength), halfScratch);
                TensorPrimitives.ConvertToSingle(halfScratch, latents.AsSpan(0, latentLength));
            }

            hooks.AfterStep(i, timesteps, latents.AsSpan(0, latentLength));
            scope.AddSchedulerTime(schedulerStart);

            scope.Report(GenerationStage.Denoising, i + 1, timesteps.Count, Preview(request, scope, i, timesteps.Count, latents, shape));
            if (request.OnStepEnd is { } onStepEnd)
            {
                context.StepIndex = i;
                context.Timestep = t;
                onStepEnd(context);
                if (context.Interrupt)
                {
                    break;
                }
            }
        }
    }

    /// <summary>The first image's preview, when the caller asked for previews, listens to progress, and the step is one to show (every
    /// <see cref="DiffusionRequest.PreviewInterval"/>th, and the last).</summary>
    private static RgbImage? Preview(DiffusionRequest request, GenerationScope scope, int index, int count, float[] latents, LatentShape shape) =>
        request.Preview is { } preview && scope.ReportsProgress && ((index + 1) % request.PreviewInterval == 0 || index == count - 1)
            ? preview.Render(latents.AsSpan(0, shape.Channels * shape.Height * shape.Width), shape.Channels, shape.Height, shape.Width)
            : null;

    /// <summary>diffusers' <c>rescale_noise_cfg</c>: match each image's guided prediction to the text prediction's standard deviation.</summary>
    private static void RescaleNoise(Span<float> guided, ReadOnlySpan<float> text, int rows, float guidanceRescale)
    {
        int rowLength = guided.Length / rows;
        for (int r = 0; r < rows; r++)
        {
            Span<float> cfg = guided.Slice(r * rowLength, rowLength);
            double ratio = StandardDeviation(text.Slice(r * rowLength, rowLength)) / StandardDeviation(cfg);
            float factor = (float)((guidanceRescale * ratio) + (1 - guidanceRescale));
            TensorPrimitives.Multiply(cfg, factor, cfg);
        }
    }

    // Unbiased (N - 1), as torch.std.
    private static double StandardDeviation(ReadOnlySpan<float> values)
    {
        double mean = 0;
        foreach (float v in values)
        {
            mean += v;
        }

        mean /= values.Length;
        double sum = 0;
        foreach (float v in values)
        {
            sum += (v - mean) * (v - mean);
        }

        return Math.Sqrt(sum / (values.Length - 1));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The UNet takes integer timesteps but the scheduler gives fractional ones (such as {Timestep}); they are truncated, as diffusers' ONNX pipelines do. Export the UNet with a float timestep for exact results.")]
    private static partial void LogTimestepTruncated(ILogger logger, float timestep);
}
