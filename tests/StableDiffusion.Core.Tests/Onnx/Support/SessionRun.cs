using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace StableDiffusion.Core.Tests.Onnx.Support;

/// <summary>Runs a session on inputs of any type and reads the outputs by name: floating-point ones as float32, flags as bool.</summary>
internal sealed class SessionRun
{
    private readonly Dictionary<string, float[]> _floats = new(StringComparer.Ordinal);
    private readonly Dictionary<string, bool[]> _flags = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long[]> _shapes = new(StringComparer.Ordinal);

    private SessionRun()
    {
    }

    /// <summary>Runs <paramref name="session"/> and keeps <paramref name="outputs"/>; the inputs are disposed.</summary>
    public static SessionRun Of(InferenceSession session, IReadOnlyList<(string Name, OrtValue Value)> inputs, params string[] outputs)
    {
        try
        {
            using var runOptions = new RunOptions();
            using IDisposableReadOnlyCollection<OrtValue> values = session.Run(runOptions, [.. inputs.Select(i => i.Name)], [.. inputs.Select(i => i.Value)], outputs);
            var run = new SessionRun();
            for (int i = 0; i < outputs.Length; i++)
            {
                OrtTensorTypeAndShapeInfo info = values[i].GetTensorTypeAndShape();
                run._shapes[outputs[i]] = info.Shape;
                switch (info.ElementDataType)
                {
                    case TensorElementType.Bool:
                        run._flags[outputs[i]] = values[i].GetTensorDataAsSpan<bool>().ToArray();
                        break;
                    case TensorElementType.Float16:
                        run._floats[outputs[i]] = [.. MemoryMarshal.Cast<Float16, Half>(values[i].GetTensorDataAsSpan<Float16>()).ToArray().Select(h => (float)h)];
                        break;
                    default:
                        run._floats[outputs[i]] = values[i].GetTensorDataAsSpan<float>().ToArray();
                        break;
                }
            }

            return run;
        }
        finally
        {
            foreach ((_, OrtValue value) in inputs)
            {
                value.Dispose();
            }
        }
    }

    /// <summary>A floating-point output, as float32.</summary>
    public float[] this[string output] => _floats[output];

    /// <summary>A bool output.</summary>
    public bool[] Flags(string output) => _flags[output];

    /// <summary>An output's shape.</summary>
    public long[] Shape(string output) => _shapes[output];

    /// <summary>An int32 input.</summary>
    public static (string, OrtValue) Input(string name, int[] values, long[] shape) => (name, OrtValue.CreateTensorValueFromMemory(values, shape));

    /// <summary>A float32 input.</summary>
    public static (string, OrtValue) Input(string name, float[] values, long[] shape) => (name, OrtValue.CreateTensorValueFromMemory(values, shape));

    /// <summary>A float16 input, from float32 values.</summary>
    public static (string, OrtValue) HalfInput(string name, float[] values, long[] shape) =>
        (name, OrtValue.CreateTensorValueFromMemory(MemoryMarshal.Cast<Half, Float16>(values.Select(v => (Half)v).ToArray()).ToArray(), shape));
}
