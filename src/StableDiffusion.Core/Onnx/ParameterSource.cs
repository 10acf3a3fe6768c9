namespace StableDiffusion.Onnx;

/// <summary>How a graph uses a stored weight.</summary>
internal enum ParameterLayout
{
    /// <summary>As stored (a Conv weight [out, in, kh, kw], a Linear weight [out, in]).</summary>
    AsStored,

    /// <summary>A 2-D weight transposed, [in, out], the right operand of a MatMul computing PyTorch's Linear.</summary>
    Transposed,
}

/// <summary>Where <see cref="GraphBuilder.Parameter"/> finds a model's weights, and how it puts them into the graph.</summary>
internal abstract class ParameterSource
{
    /// <summary>Adds the weight <paramref name="key"/> to <paramref name="graph"/>, shaped <paramref name="shape"/> when given
    /// (a view of the same elements, such as a 1x1 convolution's weight as a matrix), and returns it.</summary>
    /// <exception cref="Models.ModelLoadException">The weight is missing or has another shape.</exception>
    public abstract Value Load(GraphBuilder graph, string key, ParameterLayout layout, long[]? shape);
}
