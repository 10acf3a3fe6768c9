using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using StableDiffusion.Onnx;
using StableDiffusion.Onnx.Builders;
using StableDiffusion.Weights;

// The UNet built from a diffusers folder: load time, peak resident memory (VmHWM) and seconds per call, one scenario per
// process (run it once per row). Makes the full-size SD 1.5 UNet with random weights first if asked:
//   dotnet run -c Release --project benchmarks/StableDiffusion.UNetBenchmark -- make-sd15 /tmp/sd15-unet
//   dotnet run -c Release --project benchmarks/StableDiffusion.UNetBenchmark -- measure /tmp/sd15-unet [--flavor plain|mha]
//       [--no-prepacking] [--latent 64] [--batch 2] [--calls 1] [--sequence 77]
// and what switching between two LoRA adapters (random, on every attention layer) costs on it:
//   dotnet run -c Release --project benchmarks/StableDiffusion.UNetBenchmark -- lora-switch /tmp/sd15-unet [--rank 8] [--switches 2]
if (args is ["make-sd15", string folder])
{
    Sd15Unet.Write(folder);
    return;
}

if (args is ["lora-switch", string loraUnet, .. string[] loraOptions])
{
    string LoraOption(string name, string fallback) => Array.IndexOf(loraOptions, name) is int i and >= 0 && i + 1 < loraOptions.Length ? loraOptions[i + 1] : fallback;
    LoraSwitch.Measure(loraUnet, int.Parse(LoraOption("--rank", "8"), CultureInfo.InvariantCulture), int.Parse(LoraOption("--switches", "2"), CultureInfo.InvariantCulture));
    return;
}

if (args is not ["measure", string unet, .. string[] options])
{
    Console.Error.WriteLine("usage: make-sd15 FOLDER | measure FOLDER [--flavor plain|mha] [--no-prepacking] [--latent N] [--batch N] [--calls N] [--sequence N] | lora-switch FOLDER [--rank N] [--switches N]");
    Environment.Exit(2);
    return;
}

string flavorName = Option("--flavor", "plain");
int latent = int.Parse(Option("--latent", "64"), CultureInfo.InvariantCulture);
int batch = int.Parse(Option("--batch", "2"), CultureInfo.InvariantCulture);
int calls = int.Parse(Option("--calls", "1"), CultureInfo.InvariantCulture);
int sequence = int.Parse(Option("--sequence", "77"), CultureInfo.InvariantCulture);
bool noPrepacking = options.Contains("--no-prepacking");

double baseline = ProcessStatus.MiB("VmRSS");
var clock = Stopwatch.StartNew();
using SafetensorsFile weights = SafetensorsFile.Open(Path.Combine(unet, "diffusion_pytorch_model.safetensors"));
var parameters = new SafetensorsParameters([weights]);
var graph = new GraphBuilder(parameters: parameters, flavor: flavorName == "mha" ? GraphFlavor.PlainWithMultiHeadAttention : GraphFlavor.Plain);
UNet2DConditionModel model = UNet2DConditionModel.FromConfig(ComponentConfig.Load(Path.Combine(unet, "config.json")));
model.BuildGraph(graph);
byte[] bytes = graph.ToBytes();
double build = clock.Elapsed.TotalSeconds;
using var sessionOptions = new SessionOptions();
sessionOptions.AddSessionConfigEntry("session.model_external_initializers_file_folder_path", parameters.Folder);
if (noPrepacking)
{
    sessionOptions.AddSessionConfigEntry("session.disable_prepacking", "1");
}

using var session = new InferenceSession(bytes, sessionOptions);
double load = clock.Elapsed.TotalSeconds;
double afterLoad = ProcessStatus.MiB("VmHWM");

float[] sample = Random(batch * model.InChannels * latent * latent, 1);
float[] context = Random(batch * sequence * model.CrossAttentionDim[0], 2);
using OrtValue sampleValue = OrtValue.CreateTensorValueFromMemory(sample, [batch, model.InChannels, latent, latent]);
using OrtValue timestepValue = OrtValue.CreateTensorValueFromMemory(Enumerable.Repeat(500f, batch).ToArray(), [batch]);
using OrtValue contextValue = OrtValue.CreateTensorValueFromMemory(context, [batch, sequence, model.CrossAttentionDim[0]]);
var seconds = new List<double>();
for (int i = 0; i < calls; i++)
{
    var call = Stopwatch.StartNew();
    using var outputs = session.Run(new RunOptions(), ["sample", "timestep", "encoder_hidden_states"], [sampleValue, timestepValue, contextValue], ["out_sample"]);
    seconds.Add(call.Elapsed.TotalSeconds);
}

double weightsMiB = weights.Tensors.Sum(t => t.Length) / 1048576.0;
Console.WriteLine(JsonSerializer.Serialize(new
{
    flavor = flavorName,
    prepacking = !noPrepacking,
    latent,
    batch,
    sequence,
    weights_mib = Math.Round(weightsMiB),
    baseline_mib = Math.Round(baseline),
    build_seconds = Math.Round(build, 2),
    load_seconds = Math.Round(load, 2),
    peak_after_load_mib = Math.Round(afterLoad),
    peak_mib = Math.Round(ProcessStatus.MiB("VmHWM")),
    peak_after_load_over_weights = Math.Round((afterLoad - baseline) / weightsMiB, 3),
    seconds_per_call = seconds.Select(s => Math.Round(s, 2)),
}));

string Option(string name, string fallback) => Array.IndexOf(options, name) is int i and >= 0 && i + 1 < options.Length ? options[i + 1] : fallback;

static float[] Random(int count, int seed)
{
    var random = new Random(seed);
    return [.. Enumerable.Range(0, count).Select(_ => (float)((random.NextDouble() * 2) - 1))];
}

/// <summary>
/// The state dict of Stable Diffusion 1.5's UNet (diffusers' names and shapes, float32) with small random values, and its
/// config.json: speed and memory do not depend on the values.
/// </summary>
internal static class Sd15Unet
{
    private static readonly int[] Channels = [320, 640, 1280, 1280];
    private const int Layers = 2, TimeDim = 1280, Context = 768;

    public static void Write(string folder)
    {
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), """
            {
              "_class_name": "UNet2DConditionModel", "act_fn": "silu", "attention_head_dim": 8, "block_out_channels": [320, 640, 1280, 1280],
              "center_input_sample": false, "cross_attention_dim": 768,
              "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
              "downsample_padding": 1, "flip_sin_to_cos": true, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
              "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32, "out_channels": 4, "sample_size": 64,
              "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
            }
            """);
        List<(string Name, long[] Shape)> tensors = [.. StateDict()];
        long offset = 0;
        var entries = new List<string>();
        foreach ((string name, long[] shape) in tensors)
        {
            long bytes = shape.Aggregate(4L, (a, d) => a * d);
            entries.Add($"\"{name}\": {{\"dtype\": \"F32\", \"shape\": [{string.Join(", ", shape)}], \"data_offsets\": [{offset}, {offset + bytes}]}}");
            offset += bytes;
        }

        byte[] header = System.Text.Encoding.UTF8.GetBytes($"{{{string.Join(", ", entries)}}}");
        using var stream = new FileStream(Path.Combine(folder, "diffusion_pytorch_model.safetensors"), FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        stream.Write(BitConverter.GetBytes((ulong)header.Length));
        stream.Write(header);
        var random = new Random(1);
        float[] buffer = new float[1 << 16];
        foreach ((_, long[] shape) in tensors)
        {
            long count = shape.Aggregate(1L, (a, d) => a * d);
            float scale = shape.Length > 1 ? 1f / MathF.Sqrt(shape.Skip(1).Aggregate(1L, (a, d) => a * d)) : 0.1f;
            for (long done = 0; done < count; done += buffer.Length)
            {
                int n = (int)Math.Min(buffer.Length, count - done);
                for (int i = 0; i < n; i++)
                {
                    buffer[i] = (float)((random.NextDouble() * 2) - 1) * scale;
                }

                stream.Write(MemoryMarshal.AsBytes(buffer.AsSpan(0, n)));
            }
        }

        Console.WriteLine($"{tensors.Count} tensors, {offset / 1048576.0:F0} MiB, in {folder}");
    }

    private static IEnumerable<(string, long[])> StateDict()
    {
        foreach (var t in Conv("conv_in", 4, 320, 3)) { yield return t; }
        foreach (var t in Linear("time_embedding.linear_1", 320, TimeDim).Concat(Linear("time_embedding.linear_2", TimeDim, TimeDim))) { yield return t; }
        int channels = 320;
        for (int block = 0; block < 4; block++)
        {
            int output = Channels[block];
            for (int layer = 0; layer < Layers; layer++)
            {
                foreach (var t in Resnet($"down_blocks.{block}.resnets.{layer}", layer == 0 ? channels : output, output)) { yield return t; }
                if (block < 3)
                {
                    foreach (var t in Transformer($"down_blocks.{block}.attentions.{layer}", output)) { yield return t; }
                }
            }

            channels = output;
            if (block < 3)
            {
                foreach (var t in Conv($"down_blocks.{block}.downsamplers.0.conv", output, output, 3)) { yield return t; }
            }
        }

        foreach (var t in Resnet("mid_block.resnets.0", 1280, 1280).Concat(Transformer("mid_block.attentions.0", 1280)).Concat(Resnet("mid_block.resnets.1", 1280, 1280))) { yield return t; }
        for (int block = 0; block < 4; block++)
        {
            int output = Channels[^(block + 1)];
            int skip = Channels[^Math.Min(block + 2, 4)];
            for (int layer = 0; layer <= Layers; layer++)
            {
                int residual = layer == Layers ? skip : output;
                foreach (var t in Resnet($"up_blocks.{block}.resnets.{layer}", (layer == 0 ? channels : output) + residual, output)) { yield return t; }
                if (block > 0)
                {
                    foreach (var t in Transformer($"up_blocks.{block}.attentions.{layer}", output)) { yield return t; }
                }
            }

            channels = output;
            if (block < 3)
            {
                foreach (var t in Conv($"up_blocks.{block}.upsamplers.0.conv", output, output, 3)) { yield return t; }
            }
        }

        foreach (var t in Norm("conv_norm_out", 320).Concat(Conv("conv_out", 320, 4, 3))) { yield return t; }
    }

    private static IEnumerable<(string, long[])> Resnet(string name, int input, int output)
    {
        IEnumerable<(string, long[])> tensors = Norm($"{name}.norm1", input).Concat(Conv($"{name}.conv1", input, output, 3))
            .Concat(Linear($"{name}.time_emb_proj", TimeDim, output)).Concat(Norm($"{name}.norm2", output)).Concat(Conv($"{name}.conv2", output, output, 3));
        return input == output ? tensors : tensors.Concat(Conv($"{name}.conv_shortcut", input, output, 1));
    }

    private static IEnumerable<(string, long[])> Transformer(string name, int c)
    {
        string block = $"{name}.transformer_blocks.0";
        return Norm($"{name}.norm", c).Concat(Conv($"{name}.proj_in", c, c, 1))
            .Concat(Norm($"{block}.norm1", c)).Concat(Attention($"{block}.attn1", c, c))
            .Concat(Norm($"{block}.norm2", c)).Concat(Attention($"{block}.attn2", c, Context))
            .Concat(Norm($"{block}.norm3", c)).Concat(Linear($"{block}.ff.net.0.proj", c, 8 * c)).Concat(Linear($"{block}.ff.net.2", 4 * c, c))
            .Concat(Conv($"{name}.proj_out", c, c, 1));
    }

    private static IEnumerable<(string, long[])> Attention(string name, int c, int context) =>
        [($"{name}.to_q.weight", [c, c]), ($"{name}.to_k.weight", [c, context]), ($"{name}.to_v.weight", [c, context]), .. Linear($"{name}.to_out.0", c, c)];

    private static IEnumerable<(string, long[])> Norm(string name, int c) => [($"{name}.weight", [c]), ($"{name}.bias", [c])];

    private static IEnumerable<(string, long[])> Linear(string name, int input, int output) => [($"{name}.weight", [output, input]), ($"{name}.bias", [output])];

    private static IEnumerable<(string, long[])> Conv(string name, int input, int output, int kernel) =>
        [($"{name}.weight", [output, input, kernel, kernel]), ($"{name}.bias", [output])];
}
