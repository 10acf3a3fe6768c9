// The program eng/package-smoke-test.sh builds against the packed SDK packages in a fresh console project.
using StableDiffusion.Schedulers;

string fixtures = args[0];
SchedulerConfig config = SchedulerConfig.Load(Path.Combine(fixtures, "tiny-sd-onnx", "scheduler", "scheduler_config.json"));
Console.WriteLine($"Loaded {config.ClassName} from the installed StableDiffusion.Schedulers package.");
