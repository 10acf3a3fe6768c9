using System.Runtime.InteropServices;
using StableDiffusion.Core.Tests.Weights;
using StableDiffusion.Weights;

namespace StableDiffusion.Core.Tests.Onnx.Support;

/// <summary>Copies of a fixture's weights in the other layouts files exist in: keys renamed, or stored as float16.</summary>
internal static class WeightFiles
{
    /// <summary>
    /// Writes every tensor of <paramref name="source"/> (F32 or F16) to <paramref name="path"/> under the name
    /// <paramref name="rename"/> gives it (null leaves it out), as F32 or F16.
    /// </summary>
    public static string Rewrite(SafetensorsFile source, string path, Func<string, string?> rename, string dtype = "F32")
    {
        var tensors = new List<SafetensorsWriter.Tensor>();
        foreach (SafetensorsTensor tensor in source.Tensors)
        {
            if (rename(tensor.Name) is not { } name)
            {
                continue;
            }

            float[] values = tensor.DType == "F16"
                ? [.. MemoryMarshal.Cast<byte, Half>(source.GetBytes(tensor)).ToArray().Select(h => (float)h)]
                : MemoryMarshal.Cast<byte, float>(source.GetBytes(tensor)).ToArray();
            tensors.Add(dtype == "F16" ? SafetensorsWriter.Tensor.Float16(name, tensor.Shape, values) : SafetensorsWriter.Tensor.Float32(name, tensor.Shape, values));
        }

        SafetensorsWriter.Write(path, tensors);
        return path;
    }

    /// <summary>The name without <paramref name="prefix"/> (unchanged when it does not start with it).</summary>
    public static string WithoutPrefix(string name, string prefix) => name.StartsWith(prefix, StringComparison.Ordinal) ? name[prefix.Length..] : name;
}
