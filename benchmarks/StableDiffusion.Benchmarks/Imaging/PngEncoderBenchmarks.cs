using BenchmarkDotNet.Attributes;
using SkiaSharp;
using StableDiffusion.Imaging;
using StableDiffusion.Pipelines;
using StableDiffusion.SkiaSharp;

namespace StableDiffusion.Benchmarks.Imaging;

/// <summary>
/// Writing a 512x512 generated image as PNG: the SDK's own encoder (with and without the parameters chunk) next to
/// SkiaSharp's libpng-based encoder on the same pixels. Results: docs/benchmarks/png.md.
/// </summary>
[MemoryDiagnoser]
public class PngEncoderBenchmarks
{
    private RgbImage _image = null!;
    private GenerationParameters _parameters = null!;

    [GlobalSetup]
    public void Setup()
    {
        // A generated image is smooth with fine texture: gradients plus a little noise (pure noise would not compress,
        // flat colour would compress too well).
        const int size = 512;
        var rgb = new byte[size * size * 3];
        var random = new Random(42);
        for (int y = 0; y < size; y++)
        {
            for (int x = 0; x < size; x++)
            {
                int o = ((y * size) + x) * 3;
                rgb[o] = (byte)Math.Clamp((x / 2) + random.Next(-6, 7), 0, 255);
                rgb[o + 1] = (byte)Math.Clamp((y / 2) + random.Next(-6, 7), 0, 255);
                rgb[o + 2] = (byte)Math.Clamp(128 + (int)(60 * Math.Sin((x + y) / 40.0)) + random.Next(-6, 7), 0, 255);
            }
        }

        _image = RgbImage.FromRgb(rgb, size, size);
        _parameters = new GenerationParameters
        {
            Prompt = "a photo of an astronaut riding a horse on mars", NegativePrompt = "blurry", NumInferenceSteps = 25, Sampler = "DPM++ 2M Karras", GuidanceScale = 7.5f, Seed = 42, Width = size, Height = size,
            Model = "stable-diffusion-v1-5/stable-diffusion-v1-5",
        };
    }

    [Benchmark(Baseline = true)]
    public byte[] Sdk() => _image.ToPng();

    [Benchmark]
    public byte[] SdkWithParameters() => _image.ToPng(_parameters);

    [Benchmark]
    public byte[] SkiaSharpLibpng() => SkiaImageCodec.Encode(_image, SKEncodedImageFormat.Png, 100);
}
