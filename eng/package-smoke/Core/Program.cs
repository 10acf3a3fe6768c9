// Built by eng/package-smoke-test.sh against the packed packages in a fresh console project with StableDiffusion.Core and
// the CPU native ONNX Runtime only: generates an image with the tiny fixture model through the public API, saves it as
// PNG with no image library, and reads its parameters back.
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
await result.SaveImageAsync(output);
GenerationParameters parameters = GenerationParameters.FromPng(output) ?? throw new InvalidOperationException("The PNG has no parameters chunk.");
if (parameters.Seed != 42 || parameters.Sampler != "Euler a" || parameters.Prompt != "a photo of an astronaut riding a horse on mars")
{
    throw new InvalidOperationException($"The PNG's parameters are not the generation's: {parameters}");
}

Console.WriteLine($"Generated {output} ({result.Images[0].Width}x{result.Images[0].Height}, NSFW flag {result.NsfwContentDetected![0]}); its parameters: {parameters.ToString().ReplaceLineEndings(" | ")}");
