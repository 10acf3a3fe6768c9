using Microsoft.ML.OnnxRuntime;

namespace StableDiffusion.Core.Tests.Onnx.Support;

/// <summary>Runs a built graph on the CPU with float32 inputs and returns its first output.</summary>
internal static class GraphRunner
{
    /// <summary>A session for <paramref name="model"/>, whose external data lives in <paramref name="externalDataFolder"/>.</summary>
    public static InferenceSession Session(byte[] model, string? externalDataFolder = null)
    {
        using var options = new SessionOptions();
        if (externalDataFolder is not null)
        {
            options.AddSessionConfigEntry("session.model_external_initializers_file_folder_path", externalDataFolder);
        }

        return new InferenceSession(model, options);
    }

    /// <summary>Runs <paramref name="session"/> on named float32 inputs; returns the first output and its shape.</summary>
    public static (float[] Values, long[] Shape) Run(InferenceSession session, params (string Name, float[] Values, long[] Shape)[] inputs)
    {
        var values = inputs.Select(i => OrtValue.CreateTensorValueFromMemory(i.Values, i.Shape)).ToArray();
        try
        {
            // A RunOptions held only by the call could be finalized while the graph runs: keep it in a using.
            using var runOptions = new RunOptions();
            using IDisposableReadOnlyCollection<OrtValue> outputs = session.Run(runOptions, [.. inputs.Select(i => i.Name)], values, [session.OutputNames[0]]);
            OrtValue output = outputs[0];
            return (output.GetTensorDataAsSpan<float>().ToArray(), output.GetTensorTypeAndShape().Shape);
        }
        finally
        {
            foreach (OrtValue value in values)
            {
                value.Dispose();
            }
        }
    }

    /// <summary>Builds, loads and runs in one go.</summary>
    public static (float[] Values, long[] Shape) Run(byte[] model, string? externalDataFolder, params (string Name, float[] Values, long[] Shape)[] inputs)
    {
        using InferenceSession session = Session(model, externalDataFolder);
        return Run(session, inputs);
    }

    /// <summary>Deterministic values in [-1, 1).</summary>
    public static float[] Random(int count, int seed)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, count).Select(_ => (float)((random.NextDouble() * 2) - 1))];
    }
}
