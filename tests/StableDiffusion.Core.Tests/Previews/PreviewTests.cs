using System.Text.Json;
using StableDiffusion.Core.Tests.EndToEnd.Support;
using StableDiffusion.Core.Tests.Hardening.Drills;
using StableDiffusion.Core.Tests.Weights;
using StableDiffusion.Imaging;
using StableDiffusion.Models;
using StableDiffusion.Pipelines;
using StableDiffusion.Previews;
using Xunit;

namespace StableDiffusion.Core.Tests.Previews;

/// <summary>Step previews: the latent-to-RGB map, the tiny autoencoder built from its weights, and the progress stream.</summary>
[Trait("Area", "Previews")]
public sealed class PreviewTests(TinyPipelines pipelines)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void TheLatentRgbMap_IsALinearMapOfTheChannels()
    {
        // One pixel per channel plane: latents (1, 0, 0, 0) give the first row of the factors, (0, 0, 0, 1) the last.
        float[] latents = [1, 0, 0, 0, 0, 0, 0, 1];

        RgbImage preview = LatentRgbPreview.StableDiffusion1.Render(latents, channels: 4, height: 1, width: 2);

        Assert.Equal((2, 1), (preview.Width, preview.Height));
        Assert.Equal(Bytes(0.3512f, 0.2297f, 0.3227f).Concat(Bytes(-0.2120f, -0.2616f, -0.7177f)), preview.Pixels.ToArray());
        Assert.Throws<ArgumentException>(() => LatentRgbPreview.StableDiffusion1.Render(latents, channels: 2, height: 2, width: 2));
    }

    [Fact]
    public async Task TheStream_ReportsEveryStageAndStepWithPreviews_AndEndsWithTheResult()
    {
        // Euler runs one UNet call per step (the default PNDM runs one more).
        var request = new TextToImageRequest("a lighthouse")
        {
            Seed = 8, NumInferenceSteps = 4, Width = 48, Height = 32, Preview = LatentRgbPreview.StableDiffusion1, PreviewInterval = 3,
            Scheduler = Schedulers.SchedulerFactory.Create("Euler", pipelines.TextToImage.Scheduler.Config),
        };
        var reports = new List<GenerationProgress>();

        await foreach (GenerationProgress progress in pipelines.TextToImage.GenerateStreamingAsync(request, Ct))
        {
            reports.Add(progress);
        }

        using GenerationResult direct = await pipelines.TextToImage.GenerateAsync(request, Ct);
        Assert.Equal(
            [GenerationStage.EncodingPrompt, GenerationStage.Denoising, GenerationStage.Denoising, GenerationStage.Denoising, GenerationStage.Denoising,
                GenerationStage.Denoising, GenerationStage.Decoding, GenerationStage.SafetyChecking, GenerationStage.Completed],
            reports.Select(r => r.Stage));
        // A preview after step 3 (the interval) and after the last, at the latents' size.
        Assert.Equal([false, false, false, true, true], reports.Where(r => r.Stage == GenerationStage.Denoising).Select(r => r.Preview is not null));
        RgbImage last = reports.Last(r => r.Preview is not null).Preview!;
        Assert.Equal((6, 4), (last.Width, last.Height));
        Assert.Equal(LatentRgbPreview.StableDiffusion1.Render(GenerationBytes.Flatten(direct.Latents), 4, 4, 6).Pixels.ToArray(), last.Pixels.ToArray());
        using GenerationResult streamed = reports[^1].Result!;
        Assert.Equal(GenerationBytes.Of(direct), GenerationBytes.Of(streamed));
    }

    [Fact]
    public async Task StoppingTheStream_StopsTheGeneration()
    {
        int steps = 0;
        var request = new TextToImageRequest("a lighthouse") { Seed = 8, NumInferenceSteps = 50, Width = 32, Height = 32, OnStepEnd = _ => Interlocked.Increment(ref steps) };

        await foreach (GenerationProgress progress in pipelines.TextToImage.GenerateStreamingAsync(request, Ct))
        {
            // At or after step 2: a reader slower than the loop is given the newest report, so step 2 itself may be skipped.
            if (progress is { Stage: GenerationStage.Denoising, Step: >= 2 })
            {
                break;
            }
        }

        int atBreak = Volatile.Read(ref steps);
        await Task.Delay(200, Ct);
        Assert.InRange(Volatile.Read(ref steps), atBreak, atBreak + 2); // the step in flight and at most one more ran after the break
        Assert.True(atBreak < 50, $"The stream ran to the end ({atBreak} steps) before the break.");
    }

    [Fact]
    public void WithoutAProgressReceiver_NoPreviewIsRendered()
    {
        var counting = new CountingPreview();

        using GenerationResult result = pipelines.TextToImage.Generate(new TextToImageRequest("a cat") { Seed = 1, NumInferenceSteps = 2, Width = 32, Height = 32, Preview = counting }, cancellationToken: Ct);

        Assert.Equal(0, counting.Calls);
        Assert.Throws<ArgumentOutOfRangeException>(() => pipelines.TextToImage.Generate(new TextToImageRequest("a cat") { PreviewInterval = 0 }, cancellationToken: Ct));
    }

    [Fact]
    public void TheTinyAutoencoder_IsBuiltFromItsDiffusersWeights_AndDecodesAsTheModuleDoes()
    {
        string folder = Directory.CreateTempSubdirectory("taesd-").FullName;
        try
        {
            // A TAESD-shaped decoder, smaller: two stages of 8 channels with one residual block each.
            var weights = new TinyDecoderWeights(seed: 11);
            File.WriteAllText(Path.Combine(folder, "config.json"), JsonSerializer.Serialize(new
            {
                _class_name = "AutoencoderTiny", act_fn = "relu", decoder_block_out_channels = new[] { 8, 8 }, num_decoder_blocks = new[] { 1, 1 },
                latent_channels = 4, out_channels = 3, upsampling_scaling_factor = 2, upsample_fn = "nearest",
            }));
            SafetensorsWriter.Write(Path.Combine(folder, "diffusion_pytorch_model.safetensors"), weights.Tensors());
            float[] latents = [.. Enumerable.Range(0, 4 * 3 * 5).Select(i => MathF.Sin(i * 0.7f) * 4)];

            using TinyAutoencoderPreview taesd = TinyAutoencoderPreview.FromPretrained(folder);
            RgbImage preview = taesd.Render(latents, 4, 3, 5);

            Assert.Equal((10, 6), (preview.Width, preview.Height));
            byte[] expected = weights.Decode(latents, 3, 5);
            byte[] actual = preview.Pixels.ToArray();
            Assert.All(Enumerable.Range(0, expected.Length), i => Assert.InRange(actual[i], expected[i] - 1, expected[i] + 1));
            Assert.Contains(actual, b => b is > 0 and < 255); // not saturated: the comparison means something
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void AFolderWithoutWeights_SaysWhatIsMissing()
    {
        string folder = Directory.CreateTempSubdirectory("taesd-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(folder, "config.json"), "{}");
            ModelLoadException ex = Assert.Throws<ModelLoadException>(() => TinyAutoencoderPreview.FromPretrained(folder));
            Assert.Contains("diffusion_pytorch_model.safetensors' does not exist", ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static byte[] Bytes(params float[] rgb) => [.. rgb.Select(v => (byte)Math.Round(Math.Clamp((v * 0.5) + 0.5, 0, 1) * 255, MidpointRounding.ToEven))];

    private sealed class CountingPreview : LatentPreview
    {
        public int Calls { get; private set; }

        public override RgbImage Render(ReadOnlySpan<float> latents, int channels, int height, int width)
        {
            Calls++;
            return LatentRgbPreview.StableDiffusion1.Render(latents, channels, height, width);
        }
    }

    /// <summary>Random weights of the small decoder, and the module's forward pass written plainly (NCHW loops) as the reference.</summary>
    private sealed class TinyDecoderWeights
    {
        private readonly Dictionary<string, (float[] Values, long[] Shape)> _weights = [];

        public TinyDecoderWeights(int seed)
        {
            var random = new Random(seed);
            void Add(string name, params long[] shape)
            {
                long count = shape.Aggregate(1L, (a, b) => a * b);
                _weights[name] = ([.. Enumerable.Range(0, (int)count).Select(_ => (float)((random.NextDouble() * 2) - 1) * 0.3f)], shape);
            }

            Add("decoder.layers.0.weight", 8, 4, 3, 3);
            Add("decoder.layers.0.bias", 8);
            foreach (int block in new[] { 2, 5 })
            {
                foreach (int conv in new[] { 0, 2, 4 })
                {
                    Add($"decoder.layers.{block}.conv.{conv}.weight", 8, 8, 3, 3);
                    Add($"decoder.layers.{block}.conv.{conv}.bias", 8);
                }
            }

            Add("decoder.layers.4.weight", 8, 8, 3, 3); // no bias before the last stage
            Add("decoder.layers.6.weight", 3, 8, 3, 3);
            Add("decoder.layers.6.bias", 3);
        }

        public IEnumerable<SafetensorsWriter.Tensor> Tensors() => _weights.Select(w => SafetensorsWriter.Tensor.Float32(w.Key, w.Value.Shape, w.Value.Values));

        public byte[] Decode(float[] latents, int height, int width)
        {
            float[] x = [.. latents.Select(v => MathF.Tanh(v / 3) * 3)];
            x = Relu(Conv(x, 4, height, width, "decoder.layers.0"));
            x = Block(x, height, width, "decoder.layers.2");
            (x, height, width) = (Upsample(x, 8, height, width), height * 2, width * 2);
            x = Conv(x, 8, height, width, "decoder.layers.4");
            x = Block(x, height, width, "decoder.layers.5");
            x = Conv(x, 8, height, width, "decoder.layers.6");
            int plane = height * width;
            var rgb = new byte[plane * 3];
            for (int c = 0; c < 3; c++)
            {
                for (int p = 0; p < plane; p++)
                {
                    double unit = Math.Clamp((((x[(c * plane) + p] * 2) - 1) * 0.5) + 0.5, 0, 1);
                    rgb[(p * 3) + c] = (byte)Math.Round(unit * 255, MidpointRounding.ToEven);
                }
            }

            return rgb;
        }

        private float[] Block(float[] x, int height, int width, string name)
        {
            float[] h = Relu(Conv(x, 8, height, width, $"{name}.conv.0"));
            h = Relu(Conv(h, 8, height, width, $"{name}.conv.2"));
            h = Conv(h, 8, height, width, $"{name}.conv.4");
            return Relu([.. h.Zip(x, (a, b) => a + b)]);
        }

        private float[] Conv(float[] x, int inChannels, int height, int width, string name)
        {
            (float[] w, long[] shape) = _weights[$"{name}.weight"];
            float[]? bias = _weights.TryGetValue($"{name}.bias", out var b) ? b.Values : null;
            int outChannels = (int)shape[0];
            var y = new float[outChannels * height * width];
            for (int o = 0; o < outChannels; o++)
            {
                for (int i = 0; i < height; i++)
                {
                    for (int j = 0; j < width; j++)
                    {
                        double sum = bias?[o] ?? 0;
                        for (int c = 0; c < inChannels; c++)
                        {
                            for (int ki = 0; ki < 3; ki++)
                            {
                                for (int kj = 0; kj < 3; kj++)
                                {
                                    int si = i + ki - 1, sj = j + kj - 1;
                                    if (si >= 0 && si < height && sj >= 0 && sj < width)
                                    {
                                        sum += w[(((o * inChannels) + c) * 9) + (ki * 3) + kj] * x[(c * height * width) + (si * width) + sj];
                                    }
                                }
                            }
                        }

                        y[(o * height * width) + (i * width) + j] = (float)sum;
                    }
                }
            }

            return y;
        }

        private static float[] Relu(float[] x) => [.. x.Select(v => MathF.Max(v, 0))];

        private static float[] Upsample(float[] x, int channels, int height, int width)
        {
            var y = new float[channels * height * width * 4];
            for (int c = 0; c < channels; c++)
            {
                for (int i = 0; i < height * 2; i++)
                {
                    for (int j = 0; j < width * 2; j++)
                    {
                        y[(c * height * width * 4) + (i * width * 2) + j] = x[(c * height * width) + (i / 2 * width) + (j / 2)];
                    }
                }
            }

            return y;
        }
    }
}
