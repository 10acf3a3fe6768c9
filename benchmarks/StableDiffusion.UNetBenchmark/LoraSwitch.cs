using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using StableDiffusion.Lora;
using StableDiffusion.Models;
using StableDiffusion.Onnx;
using StableDiffusion.Onnx.Builders;
using StableDiffusion.Weights;

/// <summary>
/// What a LoRA switch costs on the full-size UNet: two random adapters of one rank on every layer of the attention blocks
/// (kohya's default set: attention projections, feed-forward, proj_in / proj_out), then the session rebuilt with each in
/// turn, as the pipeline does when a call needs other weights: merge, graph with merged weights, new session.
/// </summary>
internal static class LoraSwitch
{
    public static void Measure(string folder, int rank, int switchCount)
    {
        var clock = Stopwatch.StartNew();
        using SafetensorsFile weights = SafetensorsFile.Open(Path.Combine(folder, "diffusion_pytorch_model.safetensors"));
        var parameters = new SafetensorsParameters([weights]);
        var graph = new GraphBuilder(parameters: parameters, flavor: GraphFlavor.Plain);
        UNet2DConditionModel.FromConfig(ComponentConfig.Load(Path.Combine(folder, "config.json"))).BuildGraph(graph);
        var source = new BuiltGraph(graph.ToBytes(), parameters.Folder, folder);
        InferenceSession session = Load(source);
        double baseLoad = clock.Elapsed.TotalSeconds;
        Console.Error.WriteLine($"base load {baseLoad:F2} s");

        var targets = LoraTargets.Read(ModelComponents.UNet, source);
        var modules = targets.Modules.Values.Where(t => t.Module.Contains(".attentions.", StringComparison.Ordinal)).OrderBy(t => t.Module, StringComparer.Ordinal).ToList();
        LoraAdapter[] adapters = [Adapter("a", 1, modules, rank, targets), Adapter("b", 2, modules, rank, targets)];
        long loraParameters = adapters[0].Layers.Sum(l => (long)l.Entry.Down.Length + l.Entry.Up.Length);

        var switches = new List<object>();
        foreach (LoraAdapter adapter in Enumerable.Range(0, switchCount).Select(i => adapters[i % 2]))
        {
            var step = Stopwatch.StartNew();
            BuiltGraph merged = targets.MergedGraph(source, [new LoraContribution(adapter, 1f)]);
            double merge = step.Elapsed.TotalSeconds;
            InferenceSession next = Load(merged);
            session.Dispose();
            session = next;
            var result = new { adapter = adapter.Name, merge_seconds = Math.Round(merge, 2), total_seconds = Math.Round(step.Elapsed.TotalSeconds, 2), graph_mib = merged.Model.Length >> 20 };
            Console.Error.WriteLine(JsonSerializer.Serialize(result)); // as it comes: a slow machine may not finish every switch
            switches.Add(result);
        }

        session.Dispose();
        Console.WriteLine(JsonSerializer.Serialize(new
        {
            rank,
            layers = modules.Count,
            lora_mib = loraParameters * 4 >> 20,
            base_load_seconds = Math.Round(baseLoad, 2),
            switches,
            peak_mib = Math.Round(ProcessStatus.MiB("VmHWM")),
        }));
    }

    private static InferenceSession Load(BuiltGraph graph)
    {
        using var options = new SessionOptions();
        options.AddSessionConfigEntry("session.model_external_initializers_file_folder_path", graph.ExternalDataFolder);
        return new InferenceSession(graph.Model, options);
    }

    private static LoraAdapter Adapter(string name, int seed, List<LoraTarget> modules, int rank, LoraTargets targets)
    {
        var random = new Random(seed);
        var entries = new List<LoraEntry>(modules.Count);
        foreach (LoraTarget target in modules)
        {
            long outFeatures = target.Shape[0];
            long inFeatures = target.ElementCount / outFeatures;
            bool conv = target.Shape.Length == 4;
            entries.Add(new LoraEntry(ModelComponents.UNet, target.Module, IsFlat: false, target.Module,
                Values(random, rank * inFeatures, 1 / MathF.Sqrt(inFeatures)), conv ? [rank, inFeatures, 1, 1] : [rank, inFeatures],
                Values(random, outFeatures * rank, 0.01f), conv ? [outFeatures, rank, 1, 1] : [outFeatures, rank], Alpha: rank));
        }

        return LoraAdapter.Resolve(name, name, entries, new Dictionary<string, LoraTargets> { [ModelComponents.UNet] = targets });
    }

    private static float[] Values(Random random, long count, float scale) =>
        [.. Enumerable.Range(0, checked((int)count)).Select(_ => (float)((random.NextDouble() * 2) - 1) * scale)];
}
