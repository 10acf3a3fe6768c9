namespace StableDiffusion.Onnx;

/// <summary>Where <see cref="GraphBuilder.Parameter"/> finds a model's weights, and how it puts them into the graph.</summary>
internal abstract class ParameterSource
{
    /// <summary>Adds the weight <paramref name="key"/> to <paramref name="graph"/>, shaped <paramref name="shape"/> when given
    /// (a view of the same elements, such as a 1x1 convolution's weight as a matrix), in <paramref name="elementType"/> when given
    /// (else the source's compute type), and returns it.</summary>
    /// <exception cref="Models.ModelLoadException">The weight is missing, has another number of elements, or (asked for at its
    /// own rank) another shape.</exception>
    public abstract Value Load(GraphBuilder graph, string key, long[]? shape, TensorElementType? elementType = null);

    /// <summary>The floating-point type the graph computes in: weights are cast to it, and a builder declares its
    /// floating-point inputs with it.</summary>
    public abstract TensorElementType ComputeType { get; }

    /// <summary>The folder the graph's external-data locations are relative to: a session of the built graph loads with it as
    /// <c>session.model_external_initializers_file_folder_path</c>.</summary>
    public abstract string Folder { get; }

    /// <summary>The shape the weight <paramref name="key"/> is stored with, or null when there is no such weight (a builder
    /// telling key layouts apart, or naming the configuration field a stored shape contradicts).</summary>
    public abstract long[]? StoredShape(string key);
}
