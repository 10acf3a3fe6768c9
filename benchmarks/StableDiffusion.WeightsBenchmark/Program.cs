using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using StableDiffusion.Onnx;
using StableDiffusion.Weights;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

// Builds a chain of MatMuls over a large random safetensors file (made here, in a temporary folder) and measures, per
// scenario in a fresh process, the session's load time and the process's peak resident memory (VmHWM) against the size
// of the weights as the graph computes with them.
//   dotnet run -c Release --project benchmarks/StableDiffusion.WeightsBenchmark [-- --layers 16 --width 4096 --folder /tmp/x --layout linear]
// Weights: layers x width x width (16 x 4096 x 4096: 1 GiB in float32, 512 MiB in float16).

var arguments = new Arguments(args);
if (arguments.Scenario is { } scenario)
{
    Console.WriteLine(JsonSerializer.Serialize(Measure.Run(scenario, arguments)));
    return;
}

string folder = arguments.Folder ?? Directory.CreateTempSubdirectory("sd-weights-benchmark-").FullName;
Directory.CreateDirectory(folder);
try
{
    foreach ((string name, TensorElementType dtype, int alignment) in new[] { ("f32.safetensors", TensorElementType.Float, 8), ("f32-aligned.safetensors", TensorElementType.Float, 4096), ("f16.safetensors", TensorElementType.Float16, 8) })
    {
        string path = Path.Combine(folder, name);
        if (!File.Exists(path))
        {
            RandomWeights.Write(path, dtype, arguments.Layers, arguments.Width, alignment);
        }
    }

    Console.WriteLine($"{arguments.Layers} layers of {arguments.Width}x{arguments.Width}; files in {folder}");
    Console.WriteLine("| file | computes in | layout | session options | load s | weights MiB | baseline MiB | peak MiB | (peak - baseline) / weights | anon MiB | file-backed MiB |");
    Console.WriteLine("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    foreach (Scenario s in Scenario.All.Where(s => arguments.Layout is null || s.Layout == arguments.Layout))
    {
        string output = RunChild(s, folder, arguments);
        Result? r = JsonSerializer.Deserialize<Result>(output.Trim().Split('\n')[^1]);
        Console.WriteLine(r is null ? $"| {s} | failed |" :
            $"| {s.File} | {s.Compute} | {s.Layout} | {s.Options} | {r.LoadSeconds:F2} | {r.WeightsMiB:F0} | {r.BaselineMiB:F0} | {r.PeakMiB:F0} | {(r.PeakMiB - r.BaselineMiB) / r.WeightsMiB:F2} | {r.AnonMiB:F0} | {r.FileMiB:F0} |");
    }
}
finally
{
    if (arguments.Folder is null)
    {
        Directory.Delete(folder, recursive: true);
    }
}

static string RunChild(Scenario scenario, string folder, Arguments arguments)
{
    var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, RedirectStandardError = true };
    foreach (string a in new[] { Environment.GetCommandLineArgs()[0] }.Where(a => a.EndsWith(".dll", StringComparison.Ordinal)))
    {
        start.ArgumentList.Add(a);
    }

    foreach (string a in (string[])["--scenario", scenario.ToString(), "--folder", folder, "--layers", $"{arguments.Layers}", "--width", $"{arguments.Width}"])
    {
        start.ArgumentList.Add(a);
    }

    using Process child = Process.Start(start)!;
    string output = child.StandardOutput.ReadToEnd();
    string error = child.StandardError.ReadToEnd();
    child.WaitForExit();
    if (child.ExitCode != 0)
    {
        Console.Error.WriteLine($"{scenario}: exit {child.ExitCode}\n{error}");
        return "null";
    }

    return output;
}

/// <summary>One measurement: which file, the compute type, whether the MatMul weight is transposed, and session options.</summary>
internal sealed record Scenario(string File, string Compute, string Layout, string Options)
{
    public static IEnumerable<Scenario> All =>
    [
        new("f32.safetensors", "f32", "linear", "default"),
        new("f32.safetensors", "f32", "matmul-as-stored", "default"),
        new("f32.safetensors", "f32", "matmul-as-stored", "no-prepacking"),
        new("f32-aligned.safetensors", "f32", "matmul-as-stored", "no-prepacking"),
        new("f32.safetensors", "f32", "cast-transpose", "default"),
        new("f16.safetensors", "f16", "linear", "default"),
        new("f16.safetensors", "f32", "linear", "default"),
        new("f16.safetensors", "f32", "linear", "no-prepacking"),
        new("f16.safetensors", "f32", "owned", "default"),
        new("f16.safetensors", "f32", "owned", "no-prepacking"),
        new("f16.safetensors", "f32", "cast-transpose", "default"),
        new("f16.safetensors", "f32", "transpose-cast", "default"),
    ];

    public static Scenario Parse(string text)
    {
        string[] parts = text.Split(',');
        return new Scenario(parts[0], parts[1], parts[2], parts[3]);
    }

    public override string ToString() => $"{File},{Compute},{Layout},{Options}";
}

internal sealed record Result(double LoadSeconds, double WeightsMiB, double BaselineMiB, double PeakMiB, double AnonMiB, double FileMiB);

internal sealed class Arguments
{
    public Arguments(string[] args)
    {
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--scenario": Scenario = global::Scenario.Parse(args[i + 1]); break;
                case "--folder": Folder = args[i + 1]; break;
                case "--layers": Layers = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--width": Width = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--layout": Layout = args[i + 1]; break;
                default: throw new ArgumentException($"Unknown option {args[i]}.");
            }
        }
    }

    public Scenario? Scenario { get; }

    public string? Folder { get; }

    public string? Layout { get; }

    public int Layers { get; } = 16;

    public int Width { get; } = 4096;
}

internal static class Measure
{
    public static Result Run(Scenario scenario, Arguments arguments)
    {
        using SafetensorsFile file = SafetensorsFile.Open(Path.Combine(arguments.Folder!, scenario.File));
        double baseline = ProcessStatus.MiB("VmRSS");
        var clock = Stopwatch.StartNew(); // building the graph (and converting weights, for "owned") counts as loading
        TensorElementType compute = scenario.Compute == "f16" ? TensorElementType.Float16 : TensorElementType.Float;
        var parameters = new SafetensorsParameters([file], compute);
        var graph = new GraphBuilder(parameters: parameters);
        Value x = graph.Input("x", compute, 1, arguments.Width);
        var owned = new List<(string Name, OrtValue Value)>();
        for (int i = 0; i < arguments.Layers; i++)
        {
            using var layer = graph.Scope($"layers.{i}");
            if (scenario.Layout == "owned")
            {
                // The alternative to a Cast node: convert into float32 memory we own, handed over by AddInitializer.
                SafetensorsTensor stored = file.Find($"layers.{i}.weight")!;
                float[] converted = OwnedWeights.Convert(file, stored);
                owned.Add((stored.Name, OrtValue.CreateTensorValueFromMemory(converted, stored.Shape)));
                // ONNX Runtime replaces an initializer of the same name; this one names bytes of the right length, never read.
                Value placeholder = graph.ExternalInitializer(stored.Name, TensorElementType.Float, stored.Shape, scenario.File, 0, converted.Length * 4L);
                x = x.Linear(placeholder);
                continue;
            }

            if (scenario.Layout == "linear")
            {
                // What the builders do: the weight as stored (cast when the file has another type), transposed in the kernel.
                x = x.Linear(graph.Parameter("weight"));
                continue;
            }

            // The alternatives: the weight as stored in the graph's external data, then the conversions the layout names.
            SafetensorsTensor tensor = file.Find($"layers.{i}.weight")!;
            Value w = graph.ExternalInitializer(tensor.Name, tensor.ElementType, tensor.Shape, scenario.File, tensor.Offset, tensor.Length);
            x = scenario.Layout switch
            {
                "matmul-as-stored" => x.MatMul(w.Cast(compute)),
                "cast-transpose" => x.MatMul(w.Cast(compute).Transpose(1, 0)),
                "transpose-cast" => x.MatMul(w.Transpose(1, 0).Cast(compute)),
                _ => throw new ArgumentException($"Unknown layout {scenario.Layout}."),
            };
        }

        graph.Output(x, "y", 1, arguments.Width);
        byte[] model = graph.ToBytes();

        using var options = new SessionOptions();
        options.AddSessionConfigEntry("session.model_external_initializers_file_folder_path", parameters.Folder);
        if (scenario.Options == "no-prepacking")
        {
            options.AddSessionConfigEntry("session.disable_prepacking", "1");
        }

        foreach ((string name, OrtValue value) in owned)
        {
            options.AddInitializer(name, value);
        }

        using var session = new InferenceSession(model, options);
        double load = clock.Elapsed.TotalSeconds;
        double anon = ProcessStatus.MiB("RssAnon");
        double fileBacked = ProcessStatus.MiB("RssFile");

        // One run, so that lazily prepared kernels count too.
        using var input = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, compute, [1, arguments.Width]);
        using var outputs = session.Run(new RunOptions(), ["x"], [input], ["y"]);
        double weights = (double)arguments.Layers * arguments.Width * arguments.Width * (compute == TensorElementType.Float ? 4 : 2) / (1 << 20);
        return new Result(load, weights, baseline, ProcessStatus.MiB("VmHWM"), anon, fileBacked);
    }
}

/// <summary>A float16 weight converted to float32 in managed memory (read through the file's mapping).</summary>
internal static class OwnedWeights
{
    public static float[] Convert(SafetensorsFile file, SafetensorsTensor tensor)
    {
        var result = new float[tensor.ElementCount];
        System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(file.GetBytes(tensor)), result);
        return result;
    }
}

/// <summary>Writes layers.{i}.weight [width, width] of small random values, with the data section starting at a multiple of <c>alignment</c>.</summary>
internal static class RandomWeights
{
    public static void Write(string path, TensorElementType dtype, int layers, int width, int alignment)
    {
        int size = dtype == TensorElementType.Float16 ? 2 : 4;
        long bytes = (long)width * width * size;
        string entries = string.Join(", ", Enumerable.Range(0, layers).Select(i =>
            $"\"layers.{i}.weight\": {{\"dtype\": \"{(size == 2 ? "F16" : "F32")}\", \"shape\": [{width}, {width}], \"data_offsets\": [{i * bytes}, {(i + 1) * bytes}]}}"));
        string header = $"{{{entries}}}";
        int padded = (int)((((8 + header.Length + alignment - 1) / alignment) * alignment) - 8);
        byte[] headerBytes = System.Text.Encoding.UTF8.GetBytes(header.PadRight(padded));
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        stream.Write(BitConverter.GetBytes((ulong)headerBytes.Length));
        stream.Write(headerBytes);
        float[] row = new float[width];
        var random = new Random(1);
        float scale = 1f / MathF.Sqrt(width);
        for (long r = 0; r < (long)layers * width; r++)
        {
            for (int c = 0; c < width; c++)
            {
                row[c] = (float)((random.NextDouble() * 2) - 1) * scale;
            }

            if (size == 4)
            {
                stream.Write(MemoryMarshal.AsBytes(row.AsSpan()));
            }
            else
            {
                stream.Write(MemoryMarshal.AsBytes<Half>([.. row.Select(v => (Half)v)]));
            }
        }
    }
}
