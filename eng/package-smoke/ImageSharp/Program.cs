// Built by eng/package-smoke-test.sh against the packed packages in a fresh console project with StableDiffusion.ImageSharp
// and one SixLabors.ImageSharp version chosen by the application (2.1.13, or what an add without a version takes): the
// adapter, compiled against 2.1.13, must run on either. Converts a generated image to ImageSharp, saves and reloads it
// with ImageSharp, and feeds it back as an image-to-image input.
using System.Reflection;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using StableDiffusion.ImageSharp;
using StableDiffusion.Imaging;
using StableDiffusion.Pipelines;

string model = Path.Combine(args[0], "tiny-sd-onnx");
Directory.CreateDirectory(args[1]);
string path = Path.Combine(args[1], "imagesharp.png");
string version = typeof(Image).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "?";

var options = new StableDiffusionPipelineOptions { EnableSafetyChecker = false };
using var pipe = await StableDiffusionPipeline.FromPretrainedAsync(model, options);
using var result = await pipe.GenerateAsync(new TextToImageRequest("a lighthouse at dusk") { Seed = 42, NumInferenceSteps = 4, Height = 64, Width = 64 });

using (Image<Rgb24> picture = result.Images[0].ToImageSharp())
{
    await picture.SaveAsPngAsync(path);
}

using Image<Rgba32> loaded = await Image.LoadAsync<Rgba32>(path);
RgbImage photo = loaded.ToRgbImage();
if (!photo.Pixels.Span.SequenceEqual(result.Images[0].Pixels.Span))
{
    throw new InvalidOperationException("The image did not survive the trip through ImageSharp unchanged.");
}

using var img2img = StableDiffusionImg2ImgPipeline.FromPipe(pipe);
using var edited = await img2img.GenerateAsync(new Img2ImgRequest("a watercolour painting", photo) { Seed = 1, NumInferenceSteps = 4, Strength = 0.5 });
Console.WriteLine($"SixLabors.ImageSharp {version}: generated, converted, saved, reloaded and changed a {edited.Images[0].Width}x{edited.Images[0].Height} image.");
