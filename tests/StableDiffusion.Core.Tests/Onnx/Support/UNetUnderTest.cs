using Microsoft.ML.OnnxRuntime;
using StableDiffusion.Onnx;
using StableDiffusion.Onnx.Builders;
using StableDiffusion.Testing;
using StableDiffusion.Weights;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace StableDiffusion.Core.Tests.Onnx.Support;

/// <summary>A UNet built from a diffusers folder of the fixtures in one flavor, loaded on the CPU.</summary>
internal sealed class UNetUnderTest : IDisposable
{
    private readonly SafetensorsFile _weights;
    private readonly InferenceSession _session;

    private UNetUnderTest(SafetensorsFile weights, UNet2DConditionModel model, ModelProto graph, InferenceSession session) =>
        (_weights, Model, Graph, _session) = (weights, model, graph, session);

    /// <summary>The configuration.</summary>
    public UNet2DConditionModel Model { get; }

    /// <summary>The built graph.</summary>
    public ModelProto Graph { get; }

    /// <summary>The operator types of the graph's nodes.</summary>
    public HashSet<string> OperatorTypes => [.. Graph.Graph.Node.Select(n => n.OpType)];

    /// <summary>
    /// Builds the UNet of <paramref name="folder"/> (relative to the fixtures) in <paramref name="flavor"/> computing in
    /// <paramref name="computeType"/>, without loading it; returns the model and the folder of its external data.
    /// </summary>
    public static (ModelProto Model, string DataFolder) BuildGraph(string folder, GraphFlavor flavor, TensorElementType computeType)
    {
        string path = Fixtures.PathOf(folder);
        using SafetensorsFile weights = SafetensorsFile.Open(Path.Combine(path, "diffusion_pytorch_model.safetensors"));
        var parameters = new SafetensorsParameters([weights], computeType);
        var graph = new GraphBuilder(parameters: parameters, flavor: flavor);
        UNet2DConditionModel.FromConfig(ComponentConfig.Load(Path.Combine(path, "config.json"))).BuildGraph(graph, computeType);
        return (graph.ToModel(), parameters.Folder);
    }

    /// <summary>Builds the UNet of <paramref name="folder"/> (relative to the fixtures) in <paramref name="flavor"/> and loads it.</summary>
    public static UNetUnderTest Build(string folder, GraphFlavor flavor)
    {
        string path = Fixtures.PathOf(folder);
        SafetensorsFile weights = SafetensorsFile.Open(Path.Combine(path, "diffusion_pytorch_model.safetensors"));
        try
        {
            var parameters = new SafetensorsParameters([weights]);
            var graph = new GraphBuilder(parameters: parameters, flavor: flavor);
            UNet2DConditionModel model = UNet2DConditionModel.FromConfig(ComponentConfig.Load(Path.Combine(path, "config.json")));
            model.BuildGraph(graph);
            return new UNetUnderTest(weights, model, graph.ToModel(), GraphRunner.Session(graph.ToBytes(), parameters.Folder));
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }

    /// <summary>One call: sample [batch, in, h, w], timesteps [batch] (or <paramref name="timestepShape"/>), context [batch, sequence, dim].</summary>
    public float[] Run(float[] sample, float[] timesteps, float[] context, int batch, int height, int width, int sequence, long[]? timestepShape = null) =>
        GraphRunner.Run(_session,
            ("sample", sample, [batch, Model.InChannels, height, width]),
            ("timestep", timesteps, timestepShape ?? [batch]),
            ("encoder_hidden_states", context, [batch, sequence, Model.CrossAttentionDim[0]])).Values;

    public void Dispose()
    {
        _session.Dispose();
        _weights.Dispose();
    }
}
