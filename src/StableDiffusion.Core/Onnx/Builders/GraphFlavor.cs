namespace StableDiffusion.Onnx.Builders;

/// <summary>
/// Which operators the module builders emit for the layers whose best form depends on where the graph runs: plain ONNX
/// operators in the NCHW layout for any execution provider (<see cref="Plain"/>; optionally with ONNX Runtime's
/// <c>MultiHeadAttention</c>, which has a CPU kernel: <see cref="PlainWithMultiHeadAttention"/>), or ONNX Runtime's fused
/// CUDA operators in the NHWC layout (<see cref="CudaFused"/>, the operators its Stable Diffusion optimizer produces).
/// Module builders (<see cref="ResnetBlock2D"/>, <see cref="Transformer2D"/>, <see cref="UNet2DConditionModel"/>,
/// <see cref="AutoencoderKL"/>) call these through <see cref="GraphBuilder.Flavor"/> and never depend on the layout.
/// </summary>
internal abstract partial class GraphFlavor
{
    /// <summary>Plain ONNX operators, images in NCHW, attention as MatMul and Softmax: runs anywhere.</summary>
    public static GraphFlavor Plain { get; } = new PlainFlavor(multiHeadAttention: false);

    /// <summary>
    /// Plain ONNX operators with attention through ONNX Runtime's <c>com.microsoft.MultiHeadAttention</c>, whose CPU kernel
    /// never holds the whole [batch, heads, queries, keys] probability matrix: far less memory for large images on the CPU.
    /// </summary>
    public static GraphFlavor PlainWithMultiHeadAttention { get; } = new PlainFlavor(multiHeadAttention: true);

    /// <summary>
    /// ONNX Runtime's fused CUDA operators (<c>NhwcConv</c>, <c>GroupNorm</c> with SiLU, <c>MultiHeadAttention</c> with packed
    /// QKV and KV, <c>BiasSplitGelu</c>, and residual sums fused into <c>SkipGroupNorm</c>, <c>SkipLayerNormalization</c> and
    /// <c>BiasAdd</c>), images in NHWC between the graph's NCHW input and output. For float16 on the CUDA
    /// provider; these operators have no CPU kernels.
    /// </summary>
    public static GraphFlavor CudaFused { get; } = new CudaFusedFlavor();

    /// <summary>The axis of the channels in image tensors (1 for NCHW, 3 for NHWC).</summary>
    public abstract long ChannelAxis { get; }

    /// <summary>The axis of the image height in image tensors.</summary>
    public abstract long HeightAxis { get; }

    /// <summary>Brings an NCHW graph input into this flavor's layout.</summary>
    public abstract Value FromNchw(Value images);

    /// <summary>Brings an image tensor of this flavor's layout back to NCHW for a graph output.</summary>
    public abstract Value ToNchw(Value images);

    /// <summary><c>nn.Conv2d</c> in the current scope (its <c>weight</c> [out, in, k, k] and optional <c>bias</c>).</summary>
    public abstract Value Conv2d(GraphBuilder graph, Value x, int stride, int padding, bool bias);

    /// <summary><c>nn.GroupNorm</c> in the current scope (its <c>weight</c> and <c>bias</c>), then SiLU when <paramref name="silu"/>.</summary>
    public abstract Value GroupNorm(GraphBuilder graph, Value x, int groups, int channels, float epsilon, bool silu);

    /// <summary>A per-channel vector [N, C] shaped to broadcast over images (a time embedding added to a feature map).</summary>
    public abstract Value PerChannel(Value vector);

    /// <summary>
    /// Nearest-neighbour upsampling: 2x, or to the height and width of <paramref name="sizeOf"/> when given (diffusers'
    /// <c>upsample_size</c>, which odd skip sizes need).
    /// </summary>
    public abstract Value UpsampleNearest(Value x, Value? sizeOf);

    /// <summary>Images of <paramref name="channels"/> channels as a token sequence [N, H·W, C].</summary>
    public abstract Value ToTokens(Value images, int channels);

    /// <summary>Tokens [N, H·W, C] back to images of <paramref name="channels"/> channels, as high as <paramref name="heightOf"/>.</summary>
    public Value FromTokens(Value tokens, int channels, Value heightOf)
    {
        Value height = heightOf.Shape().Slice([HeightAxis], [HeightAxis + 1], [0]);
        return Unflatten(tokens, channels, height);
    }

    /// <summary>
    /// diffusers' <c>Attention</c> module in the current scope up to its output projection: <c>to_q</c>, <c>to_k</c>,
    /// <c>to_v</c> (with biases when <paramref name="projectionBias"/>) and scaled dot-product attention over
    /// <paramref name="heads"/> heads of <paramref name="headDim"/>, giving [N, Lq, heads·d]; the module applies <c>to_out.0</c>
    /// (with its residual). Keys and values come from <paramref name="context"/>, or from <paramref name="x"/> itself when null
    /// (self-attention).
    /// </summary>
    public abstract Value Attention(GraphBuilder graph, Value x, Value? context, int heads, int headDim, bool projectionBias);

    /// <summary>
    /// <paramref name="input"/> + <paramref name="bias"/> + <paramref name="skip"/> for <see cref="GraphBuilder.Residual"/> and
    /// <see cref="GraphBuilder.ImageResidual"/> (<paramref name="images"/>: both terms images of one shape), where
    /// <paramref name="channels"/> is the sum's width: plain additions, or a flavor's fused operator.
    /// </summary>
    public virtual Value AddResidual(GraphBuilder graph, Value input, Value skip, int channels, Value? bias, bool images) => (bias is null ? input : input + bias) + skip;

    /// <summary>Whether <see cref="AddResidual"/> adds a sum of two images of <paramref name="channels"/> channels and a bias in
    /// one operator, so that the terms' convolutions leave their biases to it.</summary>
    public virtual bool AddsImageResidualBias(int channels) => false;

    /// <summary>
    /// <c>nn.LayerNorm</c> over the last dimension with <paramref name="scale"/> and <paramref name="bias"/>; a flavor may compute
    /// a residual sum of <see cref="GraphBuilder.Residual"/> in the same operator.
    /// </summary>
    public virtual Value LayerNorm(GraphBuilder graph, Value x, Value scale, Value bias, float epsilon) => x.LayerNorm(scale, bias, epsilon);

    /// <summary>diffusers' <c>GEGLU</c> in the current scope: <c>proj</c>, then the first half times GELU of the second half.</summary>
    public abstract Value GeGlu(GraphBuilder graph, Value x);

    /// <summary>Whether attention is ONNX Runtime's <c>MultiHeadAttention</c>, which also takes the projections' biases.</summary>
    public abstract bool UsesMultiHeadAttention { get; }

    /// <summary>Reshapes tokens to this layout's images of the given height.</summary>
    private protected abstract Value Unflatten(Value tokens, int channels, Value height);

    /// <summary>Attention over already projected q [N, Lq, heads·d], k and v [N, Lk, heads·d], as plain operators or MultiHeadAttention.</summary>
    private protected static Value ScaledDotProduct(Value q, Value k, Value v, int heads, int headDim, bool multiHeadAttention) =>
        multiHeadAttention
            ? Builders.Attention.MultiHead(heads, q, k, v)
            : Builders.Attention.ScaledDotProduct(q, k, v, heads, headDim);

    /// <summary>The plain flavor: ONNX operators in NCHW.</summary>
    private sealed class PlainFlavor(bool multiHeadAttention) : GraphFlavor
    {
        public override long ChannelAxis => 1;

        public override long HeightAxis => 2;

        public override bool UsesMultiHeadAttention => multiHeadAttention;

        public override Value FromNchw(Value images) => images;

        public override Value ToNchw(Value images) => images;

        public override Value Conv2d(GraphBuilder graph, Value x, int stride, int padding, bool bias) =>
            x.Conv(graph.Parameter("weight"), bias ? graph.Parameter("bias") : null, stride, padding);

        public override Value GroupNorm(GraphBuilder graph, Value x, int groups, int channels, float epsilon, bool silu)
        {
            long[] shape = [channels, 1, 1];
            Value normalized = x.GroupNorm(groups, graph.Parameter("weight", shape), graph.Parameter("bias", shape), epsilon);
            return silu ? normalized.Silu() : normalized;
        }

        public override Value PerChannel(Value vector) => vector.Unsqueeze(2, 3);

        public override Value UpsampleNearest(Value x, Value? sizeOf)
        {
            if (sizeOf is null)
            {
                return x.UpsampleNearest(2);
            }

            Value sizes = Value.Concat(0, x.Shape().Slice([0], [2], [0]), sizeOf.Shape().Slice([2], [4], [0]));
            return x.Graph.Node("Resize", [x, null, null, sizes],
                attributes: [("mode", "nearest"), ("coordinate_transformation_mode", "asymmetric"), ("nearest_mode", "floor")]);
        }

        public override Value ToTokens(Value images, int channels) => images.Reshape(0, channels, -1).Transpose(0, 2, 1);

        public override Value Attention(GraphBuilder graph, Value x, Value? context, int heads, int headDim, bool projectionBias)
        {
            Value source = context ?? x;
            return ScaledDotProduct(
                graph.Linear("to_q", x, projectionBias), graph.Linear("to_k", source, projectionBias), graph.Linear("to_v", source, projectionBias),
                heads, headDim, multiHeadAttention);
        }

        public override Value GeGlu(GraphBuilder graph, Value x)
        {
            Value[] halves = graph.Linear("proj", x).Chunk(2, axis: -1);
            return halves[0] * halves[1].Gelu();
        }

        private protected override Value Unflatten(Value tokens, int channels, Value height) =>
            tokens.Transpose(0, 2, 1).Reshape(Value.Concat(0, tokens.Graph.Int64s(0, channels), height, tokens.Graph.Int64s(-1)));
    }
}
