// The program eng/package-smoke-test.sh builds against the packed SDK packages in a fresh console project:
// it generates an image with the tiny fixture model through the public API, as an application would.
using StableDiffusion.Pipelines;
using StableDiffusion.Schedulers;

string model = Path.Combine(args[0], "tiny-sd-onnx");
string output = Path.Combine(args[1], "smoke.png");
Directory.CreateDirectory(args[1]);

using var pipe = await StableDiffusionPipeline.FromPretrainedAsync(model);
pipe.Scheduler = SchedulerFactory.Create("Euler a", pipe.Scheduler.Config);
using var result = await pipe.GenerateAsync(new TextToImageRequest("a photo of an astronaut riding a horse on mars")
{
    Seed = 42, NumInferenceSteps = 5, Height = 64, Width = 64,
});
result.SaveImage(output);
Console.WriteLine($"Generated {output} ({result.Images[0].Width}x{result.Images[0].Height}, NSFW flag {result.NsfwContentDetected![0]}) with the installed packages.");
