using StableDiffusion.Onnx;
using StableDiffusion.Weights;
using Xunit;

namespace StableDiffusion.Core.Tests.Onnx.Support;

/// <summary>Assertions about built graphs.</summary>
internal static class GraphAssert
{
    /// <summary>
    /// Every tensor of <paramref name="weights"/> is an initializer of <paramref name="model"/> that points into the file
    /// (external data, under its own name), and no weight was copied into the graph.
    /// </summary>
    public static void KeepsEveryWeightInItsFile(ModelProto model, SafetensorsFile weights)
    {
        TensorProto[] external = [.. model.Graph.Initializer.Where(t => t.DataLocation == TensorProto.Types.DataLocation.External)];
        Assert.Equal(weights.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal), external.Select(t => t.Name).Order(StringComparer.Ordinal));
        Assert.All(external, t => Assert.Equal(Path.GetFileName(weights.Path), t.ExternalData.Single(e => e.Key == "location").Value));
        long embedded = model.Graph.Initializer.Sum(t => (long)t.RawData.Length);
        Assert.True(embedded < 16 * 1024, $"The graph embeds {embedded} bytes of initializers: weights were copied into it.");
    }
}
