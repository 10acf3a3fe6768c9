using System.Text.Json;
using Microsoft.ML.OnnxRuntime.Tensors;
using StableDiffusion.Testing;
using StableDiffusion.Weights;
using Xunit;

namespace StableDiffusion.Core.Tests.Weights;

/// <summary>
/// Files written by torch.save itself (torch 2.11, by eng/reference/make_test_weights.py, committed under
/// tests/reference/weights): a Lightning-style checkpoint and a plain state dict with float16, bfloat16, float64 and int64
/// tensors and views sharing one storage, and textual-inversion files; every tensor read as torch recorded it.
/// </summary>
[Trait("Area", "WeightsLoading")]
public sealed class RealTorchSaveTests
{
    private static readonly string Folder = Path.Combine(Fixtures.RepositoryRoot, "tests", "reference", "weights");

    [Theory]
    [InlineData("checkpoint.ckpt")]
    [InlineData("pytorch_model.bin")]
    public void TorchSaveFile_ReadsEveryTensorAsTorchRecordedIt(string file)
    {
        using JsonDocument expected = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "torch", "expected.json")));
        using var checkpoint = TorchCheckpoint.Open(Path.Combine(Folder, "torch", file));

        JsonElement tensors = expected.RootElement.GetProperty("tensors");
        Assert.Equal(tensors.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal), checkpoint.StateDict.Keys.Order(StringComparer.Ordinal));
        foreach (JsonProperty entry in tensors.EnumerateObject())
        {
            TorchCheckpointTensor tensor = checkpoint.StateDict[entry.Name];
            JsonElement e = entry.Value;
            Assert.Equal(ElementType(e.GetProperty("dtype").GetString()!), tensor.ElementType);
            Assert.Equal(e.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()), tensor.Shape);
            Assert.Equal(e.GetProperty("contiguous").GetBoolean(), tensor.IsContiguous);
            double[] values = Values(tensor);
            double[] first = [.. e.GetProperty("first").EnumerateArray().Select(v => v.GetDouble())];
            Assert.Equal(first, values.Take(first.Length));
            Assert.Equal(e.GetProperty("sum").GetDouble(), values.Sum(), 1e-9 * Math.Max(1, values.Sum(Math.Abs)));
        }

        if (file.EndsWith(".ckpt", StringComparison.Ordinal))
        {
            Assert.Equal(1234L, Convert.ToInt64(checkpoint.Values["global_step"], System.Globalization.CultureInfo.InvariantCulture));
            Assert.Equal(3L, Convert.ToInt64(checkpoint.Values["epoch"], System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    [Theory]
    [InlineData("webui-pt.pt", "string_to_param.*", 2)]
    [InlineData("learned_embeds.bin", "<bin-token>", 1)]
    public void TextualInversionPickles_HoldTheirVectors(string file, string name, int vectors)
    {
        using var checkpoint = TorchCheckpoint.Open(Path.Combine(Folder, "embeddings", file));

        TorchCheckpointTensor tensor = checkpoint.Tensors[name];
        Assert.Equal(TensorElementType.Float, tensor.ElementType);
        Assert.Equal(vectors * 32, tensor.ElementCount);
        Assert.All(Values(tensor), v => Assert.True(double.IsFinite(v) && v != 0));
    }

    private static TensorElementType ElementType(string dtype) => dtype switch
    {
        "float32" => TensorElementType.Float,
        "float16" => TensorElementType.Float16,
        "bfloat16" => TensorElementType.BFloat16,
        "float64" => TensorElementType.Double,
        "int64" => TensorElementType.Int64,
        _ => throw new InvalidOperationException($"No element type for torch dtype {dtype}."),
    };

    // Every element as a double: floating tensors converted by the reader, int64 ones read from their bytes.
    private static double[] Values(TorchCheckpointTensor tensor)
    {
        if (tensor.ElementType == TensorElementType.Int64)
        {
            var bytes = new byte[tensor.ByteCount];
            tensor.CopyTo(bytes);
            return [.. System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(bytes).ToArray().Select(v => (double)v)];
        }

        if (tensor.ElementType == TensorElementType.Double)
        {
            var bytes = new byte[tensor.ByteCount];
            tensor.CopyTo(bytes);
            return System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(bytes).ToArray();
        }

        var singles = new float[tensor.ElementCount];
        tensor.CopyTo(singles);
        return [.. singles.Select(v => (double)v)];
    }
}
