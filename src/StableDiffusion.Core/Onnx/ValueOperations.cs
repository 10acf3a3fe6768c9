namespace StableDiffusion.Onnx;

/// <summary>
/// The ONNX operators Stable Diffusion's models use, as methods and operators of <see cref="Value"/>, each adding one node
/// (or a few, for functions such as <see cref="Silu"/>) in the graph's current scope. Scalars become constants of the
/// value's own element type, so the same builder code makes a float32 or a float16 graph.
/// </summary>
internal sealed partial class Value
{
    /// <summary>Element-wise sum (broadcasting, as ONNX does).</summary>
    public static Value operator +(Value a, Value b) => a.Binary("Add", b);

    /// <summary>Element-wise difference.</summary>
    public static Value operator -(Value a, Value b) => a.Binary("Sub", b);

    /// <summary>Element-wise product.</summary>
    public static Value operator *(Value a, Value b) => a.Binary("Mul", b);

    /// <summary>Element-wise quotient.</summary>
    public static Value operator /(Value a, Value b) => a.Binary("Div", b);

    /// <summary>Adds a scalar.</summary>
    public static Value operator +(Value a, float b) => a.Binary("Add", a.Like(b));

    /// <summary>Adds to a scalar.</summary>
    public static Value operator +(float a, Value b) => b.Like(a).Binary("Add", b);

    /// <summary>Subtracts a scalar.</summary>
    public static Value operator -(Value a, float b) => a.Binary("Sub", a.Like(b));

    /// <summary>Subtracts from a scalar.</summary>
    public static Value operator -(float a, Value b) => b.Like(a).Binary("Sub", b);

    /// <summary>Multiplies by a scalar.</summary>
    public static Value operator *(Value a, float b) => a.Binary("Mul", a.Like(b));

    /// <summary>Multiplies a scalar.</summary>
    public static Value operator *(float a, Value b) => b.Like(a).Binary("Mul", b);

    /// <summary>Divides by a scalar.</summary>
    public static Value operator /(Value a, float b) => a.Binary("Div", a.Like(b));

    /// <summary>Divides a scalar.</summary>
    public static Value operator /(float a, Value b) => b.Like(a).Binary("Div", b);

    /// <summary>Negation.</summary>
    public static Value operator -(Value a) => a.Unary("Neg");

    /// <summary>A scalar constant of this value's element type.</summary>
    public Value Like(float scalar) => Graph.Scalar(scalar, ElementType);

    /// <summary>Matrix product (numpy semantics: batched over leading dimensions).</summary>
    public Value MatMul(Value other) => Binary("MatMul", other);

    /// <summary>
    /// PyTorch's <c>F.linear</c>: <c>this @ weightᵀ + bias</c> with the weight as PyTorch stores it, [out, in]. ONNX Runtime's
    /// FusedMatMul transposes inside the kernel, so the weight is never copied into a transposed initializer.
    /// </summary>
    public Value Linear(Value weight, Value? bias = null)
    {
        Value product = Graph.Node("FusedMatMul", [this, weight], domain: GraphBuilder.MicrosoftDomain, attributes: ("transB", 1L));
        return bias is null ? product : product + bias;
    }

    /// <summary>Element-wise power.</summary>
    public Value Pow(float exponent) => Binary("Pow", Like(exponent));

    /// <summary>Element-wise square root.</summary>
    public Value Sqrt() => Unary("Sqrt");

    /// <summary>Element-wise e^x.</summary>
    public Value Exp() => Unary("Exp");

    /// <summary>Element-wise sine.</summary>
    public Value Sin() => Unary("Sin");

    /// <summary>Element-wise cosine.</summary>
    public Value Cos() => Unary("Cos");

    /// <summary>Element-wise error function.</summary>
    public Value Erf() => Unary("Erf");

    /// <summary>Element-wise hyperbolic tangent.</summary>
    public Value Tanh() => Unary("Tanh");

    /// <summary>Element-wise logistic sigmoid.</summary>
    public Value Sigmoid() => Unary("Sigmoid");

    /// <summary>SiLU (swish), <c>x * sigmoid(x)</c>, as PyTorch's exporter writes it (ONNX Runtime fuses the pair).</summary>
    public Value Silu() => this * Sigmoid();

    /// <summary>Exact GELU, <c>0.5 x (1 + erf(x / sqrt 2))</c>, the pattern ONNX Runtime fuses into its Gelu kernel.</summary>
    public Value Gelu() => this * ((this / MathF.Sqrt(2f)).Erf() + 1f) * 0.5f;

    /// <summary>GELU with the tanh approximation (<c>approximate="tanh"</c>), as the pattern PyTorch exports.</summary>
    public Value GeluTanh() => this * 0.5f * (((this + (this.Pow(3f) * 0.044715f)) * MathF.Sqrt(2f / MathF.PI)).Tanh() + 1f);

    /// <summary>QuickGELU (<c>x * sigmoid(1.702 x)</c>), the activation of CLIP's text encoder.</summary>
    public Value QuickGelu() => this * (this * 1.702f).Sigmoid();

    /// <summary>Clamps to [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public Value Clip(float min, float max) => Graph.Node("Clip", [this, Like(min), Like(max)]);

    /// <summary>Converts to another element type (nothing when it already is).</summary>
    public Value Cast(TensorElementType to) =>
        to == ElementType ? this : Graph.Node("Cast", [this], to, attributes: ("to", (long)to));

    /// <summary>Softmax along <paramref name="axis"/>.</summary>
    public Value Softmax(long axis = -1) => Graph.Node("Softmax", [this], attributes: ("axis", axis));

    /// <summary>Reshape to <paramref name="shape"/> (0 copies a dimension, -1 infers one).</summary>
    public Value Reshape(params long[] shape) => Reshape(Graph.Int64s(shape));

    /// <summary>Reshape to a shape computed in the graph.</summary>
    public Value Reshape(Value shape) => Graph.Node("Reshape", [this, shape]);

    /// <summary>Permutes the dimensions.</summary>
    public Value Transpose(params long[] permutation) => Graph.Node("Transpose", [this], attributes: ("perm", permutation));

    /// <summary>Inserts dimensions of size 1 at <paramref name="axes"/>.</summary>
    public Value Unsqueeze(params long[] axes) => Graph.Node("Unsqueeze", [this, Graph.Int64s(axes)]);

    /// <summary>Removes the dimensions of size 1 at <paramref name="axes"/>.</summary>
    public Value Squeeze(params long[] axes) => Graph.Node("Squeeze", [this, Graph.Int64s(axes)]);

    /// <summary>Broadcasts to <paramref name="shape"/>.</summary>
    public Value Expand(Value shape) => Graph.Node("Expand", [this, shape]);

    /// <summary>The shape, as an int64 vector.</summary>
    public Value Shape() => Graph.Node("Shape", [this], TensorElementType.Int64);

    /// <summary>The elements <c>[starts, ends)</c> along <paramref name="axes"/> with <paramref name="steps"/> (1 each when null).</summary>
    public Value Slice(long[] starts, long[] ends, long[] axes, long[]? steps = null) =>
        Graph.Node("Slice", [this, Graph.Int64s(starts), Graph.Int64s(ends), Graph.Int64s(axes), steps is null ? null : Graph.Int64s(steps)]);

    /// <summary>Splits along <paramref name="axis"/> into parts of the given sizes.</summary>
    public Value[] Split(long axis, params long[] sizes) =>
        Graph.Node("Split", [this, Graph.Int64s(sizes)], [.. Enumerable.Repeat(ElementType, sizes.Length)], attributes: ("axis", axis));

    /// <summary>Splits along <paramref name="axis"/> into <paramref name="parts"/> equal parts.</summary>
    public Value[] Chunk(int parts, long axis) =>
        Graph.Node("Split", [this], [.. Enumerable.Repeat(ElementType, parts)], attributes: ("axis", axis));

    /// <summary>Picks entries along <paramref name="axis"/> by index (numpy's take).</summary>
    public Value Gather(Value indices, long axis = 0) => Graph.Node("Gather", [this, indices], attributes: ("axis", axis));

    /// <summary>The mean over <paramref name="axes"/>.</summary>
    public Value ReduceMean(long[] axes, bool keepDimensions = true) =>
        Graph.Node("ReduceMean", [this], attributes: [("axes", axes), ("keepdims", keepDimensions ? 1L : 0L)]);

    /// <summary>The index of the largest entry along <paramref name="axis"/> (the first one on ties).</summary>
    public Value ArgMax(long axis, bool keepDimensions = false) =>
        Graph.Node("ArgMax", [this], TensorElementType.Int64, attributes: [("axis", axis), ("keepdims", keepDimensions ? 1L : 0L)]);

    /// <summary>Element-wise equality, as booleans.</summary>
    public Value Equal(Value other) => Graph.Node("Equal", [this, other], TensorElementType.Bool);

    /// <summary>Element-wise <c>this &gt; other</c>, as booleans.</summary>
    public Value Greater(Value other) => Graph.Node("Greater", [this, other], TensorElementType.Bool);

    /// <summary>Nearest-neighbour upsampling by an integer factor over the last two dimensions, as PyTorch's <c>interpolate(mode="nearest")</c>.</summary>
    public Value UpsampleNearest(int factor) =>
        Graph.Node("Resize", [this, null, Graph.Constant([1f, 1f, factor, factor], [4])],
            attributes: [("mode", "nearest"), ("coordinate_transformation_mode", "asymmetric"), ("nearest_mode", "floor")]);

    /// <summary>2-D convolution with weight [out, in / groups, kh, kw] and an optional bias [out].</summary>
    public Value Conv(Value weight, Value? bias, long stride = 1, long padding = 0, long groups = 1) =>
        Graph.Node("Conv", [this, weight, bias], attributes:
            [("strides", new[] { stride, stride }), ("pads", new[] { padding, padding, padding, padding }), ("group", groups), ("dilations", new long[] { 1, 1 })]);

    /// <summary>Layer normalization over the last dimension.</summary>
    public Value LayerNorm(Value scale, Value? bias, float epsilon) =>
        Graph.Node("LayerNormalization", [this, scale, bias], attributes: [("axis", -1L), ("epsilon", epsilon)]);

    /// <summary>
    /// Group normalization of [N, C, ...] over <paramref name="groups"/> groups of channels, then the per-channel affine
    /// transform with <paramref name="scale"/> and <paramref name="bias"/> shaped to broadcast ([C, 1, 1] for images): the
    /// InstanceNormalization pattern of PyTorch's exporter, which ONNX Runtime's optimizer fuses into its GroupNorm.
    /// </summary>
    public Value GroupNorm(int groups, Value scale, Value bias, float epsilon)
    {
        Value ones = Graph.Constant([.. Enumerable.Repeat(1f, groups)], [groups], ElementType);
        Value zeros = Graph.Constant(new float[groups], [groups], ElementType);
        Value normalized = Graph.Node("InstanceNormalization", [Reshape(0, groups, -1), ones, zeros], attributes: ("epsilon", epsilon));
        return normalized.Reshape(Shape()) * scale + bias;
    }

    /// <summary>Einstein summation over <paramref name="operands"/> (such as <c>"bhqd,bhkd->bhqk"</c>).</summary>
    public static Value Einsum(string equation, params Value[] operands)
    {
        ArgumentOutOfRangeException.ThrowIfZero(operands.Length);
        return operands[0].Graph.Node("Einsum", operands, attributes: ("equation", equation));
    }

    /// <summary>Concatenates values along <paramref name="axis"/>.</summary>
    public static Value Concat(long axis, params Value[] values)
    {
        ArgumentOutOfRangeException.ThrowIfZero(values.Length);
        return values[0].Graph.Node("Concat", values, attributes: ("axis", axis));
    }

    private Value Unary(string opType) => Graph.Node(opType, [this]);

    private Value Binary(string opType, Value other) => Graph.Node(opType, [this, other]);
}
