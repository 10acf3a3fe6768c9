using TensorElementTypeAlias = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;
using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;

namespace StableDiffusion.Benchmarks;

/// <summary>
/// ONNX Runtime's own time for one UNet call on the pipeline's session, with nothing around it: the same shapes and
/// element types as the pipeline's calls, inputs prepared once (on the GPU, through IOBinding, when the session runs on
/// CUDA), the call repeated and the median taken.
/// </summary>
internal static class BareUNet
{
    public static double Measure(InferenceSession session, BenchmarkOptions options, bool cudaGraph)
    {
        int batch = 2 * options.Batch;
        int latent = options.Size / 8;
        NodeMetadata sampleMeta = session.InputMetadata["sample"];
        NodeMetadata timestepMeta = session.InputMetadata["timestep"];
        NodeMetadata hiddenMeta = session.InputMetadata["encoder_hidden_states"];
        int channels = sampleMeta.Dimensions[1] > 0 ? sampleMeta.Dimensions[1] : 4;
        int hidden = hiddenMeta.Dimensions[2] > 0 ? hiddenMeta.Dimensions[2] : 768;
        long[] timestepShape = timestepMeta.Dimensions.Length == 0 ? [] : [timestepMeta.Dimensions[0] > 0 ? timestepMeta.Dimensions[0] : batch];
        var random = new Random(1);
        using OrtValue sample = Random(sampleMeta.ElementDataType, [batch, channels, latent, latent], random, 1f);
        using OrtValue timestep = Random(timestepMeta.ElementDataType, timestepShape, random, 0f, 500f);
        using OrtValue hiddenStates = Random(hiddenMeta.ElementDataType, [batch, 77, hidden], random, 1f);
        string output = session.OutputNames[0];
        using var runOptions = new RunOptions();
        var times = new List<double>();

        bool onCuda = options.Provider == "cuda" && options.IoBinding != false;
        if (onCuda)
        {
            // A second graph annotation keeps these bindings from replaying the pipeline's captured graph.
            if (cudaGraph)
            {
                runOptions.AddRunConfigEntry("gpu_graph_id", "1");
            }

            using var binding = session.CreateIoBinding();
            using var cuda = new OrtMemoryInfo(OrtMemoryInfo.allocatorCUDA, OrtAllocatorType.DeviceAllocator, options.DeviceId, OrtMemType.Default);
            binding.BindInput("sample", sample);
            binding.BindInput("timestep", timestep);
            binding.BindInput("encoder_hidden_states", hiddenStates);
            binding.BindOutputToDevice(output, cuda);
            for (int i = 0; i < options.BareCalls + 3; i++)
            {
                long start = Stopwatch.GetTimestamp();
                session.RunWithBinding(runOptions, binding);
                if (i >= 3)
                {
                    times.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                }
            }
        }
        else
        {
            string[] names = ["sample", "timestep", "encoder_hidden_states"];
            OrtValue[] inputs = [sample, timestep, hiddenStates];
            using OrtValue result = Random(session.OutputMetadata[output].ElementDataType, [batch, 4, latent, latent], random, 0f);
            for (int i = 0; i < options.BareCalls + 3; i++)
            {
                long start = Stopwatch.GetTimestamp();
                session.Run(runOptions, names, inputs, [output], [result]);
                if (i >= 3)
                {
                    times.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                }
            }
        }

        return BenchmarkReport.MedianOf(times);
    }

    private static OrtValue Random(TensorElementTypeAlias type, long[] shape, Random random, float scale, float offset = 0f)
    {
        int length = (int)shape.Aggregate(1L, (a, b) => a * b);
        float Next() => offset + (scale * ((float)random.NextDouble() * 2 - 1));
        return type switch
        {
            TensorElementTypeAlias.Float => OrtValue.CreateTensorValueFromMemory(Enumerable.Range(0, length).Select(_ => Next()).ToArray(), shape),
            TensorElementTypeAlias.Float16 => OrtValue.CreateTensorValueFromMemory(Enumerable.Range(0, length).Select(_ => (Float16)Next()).ToArray(), shape),
            TensorElementTypeAlias.Int64 => OrtValue.CreateTensorValueFromMemory(Enumerable.Range(0, length).Select(_ => (long)Next()).ToArray(), shape),
            TensorElementTypeAlias.Int32 => OrtValue.CreateTensorValueFromMemory(Enumerable.Range(0, length).Select(_ => (int)Next()).ToArray(), shape),
            _ => throw new NotSupportedException($"Input type {type}"),
        };
    }
}
