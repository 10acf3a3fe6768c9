// Built by eng/package-smoke-test.sh against the packed packages in a fresh console project with StableDiffusion.SkiaSharp
// and SkiaSharp's Linux native assets: converts a generated image to SkiaSharp, encodes it as JPEG and WebP, decodes
// them with the size limits, and feeds one back as an image-to-image input.
using System.Reflection;
using SkiaSharp;
using StableDiffusion.Imaging;
using StableDiffusion.Pipelines;
using StableDiffusion.SkiaSharp;

string model = Path.Combine(args[0], "tiny-sd-onnx");
Directory.CreateDirectory(args[1]);
string version = typeof(SKBitmap).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "?";

var options = new StableDiffusionPipelineOptions { EnableSafetyChecker = false };
using var pipe = await StableDiffusionPipeline.FromPretrainedAsync(model, options);
using var result = await pipe.GenerateAsync(new TextToImageRequest("a lighthouse at dusk") { Seed = 42, NumInferenceSteps = 4, Height = 64, Width = 64 });

using (SKBitmap bitmap = result.Images[0].ToSKBitmap())
{
    if (!bitmap.ToRgbImage().Pixels.Span.SequenceEqual(result.Images[0].Pixels.Span))
    {
        throw new InvalidOperationException("The image did not survive the trip through SKBitmap unchanged.");
    }
}

foreach (SKEncodedImageFormat format in new[] { SKEncodedImageFormat.Jpeg, SKEncodedImageFormat.Webp })
{
    string path = Path.Combine(args[1], $"skiasharp.{format.ToString().ToLowerInvariant()}");
    await File.WriteAllBytesAsync(path, SkiaImageCodec.Encode(result.Images[0], format));
    RgbImage decoded = SkiaImageCodec.Decode(path, new ImageDecodeLimits { MaxWidth = 64, MaxHeight = 64, MaxPixels = 64 * 64 });
    Console.WriteLine($"{format}: wrote and decoded {path} ({decoded.Width}x{decoded.Height})");
}

RgbImage photo = SkiaImageCodec.Decode(Path.Combine(args[1], "skiasharp.jpeg"));
using var img2img = StableDiffusionImg2ImgPipeline.FromPipe(pipe);
using var edited = await img2img.GenerateAsync(new Img2ImgRequest("a watercolour painting", photo) { Seed = 1, NumInferenceSteps = 4, Strength = 0.5 });
Console.WriteLine($"SkiaSharp {version}: generated, converted, encoded, decoded and changed a {edited.Images[0].Width}x{edited.Images[0].Height} image.");
