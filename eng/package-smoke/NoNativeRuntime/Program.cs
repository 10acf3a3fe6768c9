// Built by eng/package-smoke-test.sh in a fresh console project that references StableDiffusion.Core only, as a new user's
// first try does: without ONNX Runtime's native package, loading must fail with an exception that names the package to
// add, not a TypeInitializationException or DllNotFoundException from deep inside ONNX Runtime.
using StableDiffusion;
using StableDiffusion.Pipelines;

string model = Path.Combine(args[0], "tiny-sd-onnx");
try
{
    using var pipe = await StableDiffusionPipeline.FromPretrainedAsync(model);
    Console.Error.WriteLine("The model loaded without a native ONNX Runtime package: this test's premise is wrong.");
    return 1;
}
catch (StableDiffusionException ex) when (ex.Message.Contains("Microsoft.ML.OnnxRuntime for the CPU", StringComparison.Ordinal)
    && ex.Message.Contains("Microsoft.ML.OnnxRuntime.Gpu for CUDA", StringComparison.Ordinal))
{
    Console.WriteLine($"Without a native runtime, {ex.GetType().Name}: {ex.Message}");
    return 0;
}
