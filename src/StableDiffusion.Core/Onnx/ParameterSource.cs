namespace StableDiffusion.Onnx;

/// <summary>Where <see cref="GraphBuilder.Parameter"/> finds a model's weights, and how it puts them into the graph.</summary>
internal abstract class ParameterSource
{
    /// <summary>Adds the weight <paramref name="key"/> to <paramref name="graph"/>, shaped <paramref name="shape"/> when given
    /// (a view of the same elements, such as a 1x1 convolution's weight as a matrix), in <paramref name="elementType"/> when given
    /// (else the source's compute type), and returns it.</summary>
    /// <exception cref="Models.ModelLoadException">The weight is missing or has another number of elements.</exception>
    public abstract Value Load(GraphBuilder graph, string key, long[]? shape, TensorElementType? elementType = null);

    /// <summary>The shape <paramref name="key"/> is stored with.</summary>
    /// <exception cref="Models.ModelLoadException">The weight is missing.</exception>
    public abstract long[] StoredShape(string key);
}
