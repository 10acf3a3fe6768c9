namespace StableDiffusion.Onnx;

/// <summary>
/// A tensor in a graph under construction: a graph input, an initializer or a node's output, with its element type. The
/// operator methods (<see cref="Value"/>'s other part) add nodes to the same <see cref="GraphBuilder"/>, named after its
/// current scope, so a module builder reads like the PyTorch module's forward: <c>h = (x + y).Silu() * 0.5f</c>.
/// </summary>
internal sealed partial class Value
{
    internal Value(GraphBuilder graph, string name, TensorElementType elementType)
    {
        Graph = graph;
        Name = name;
        ElementType = elementType;
    }

    /// <summary>The graph the value belongs to.</summary>
    public GraphBuilder Graph { get; }

    /// <summary>The tensor's name in the graph.</summary>
    public string Name { get; }

    /// <summary>The element type.</summary>
    public TensorElementType ElementType { get; }

    /// <inheritdoc/>
    public override string ToString() => $"{Name}: {ElementType}";
}
