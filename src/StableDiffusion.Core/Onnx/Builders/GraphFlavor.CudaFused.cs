namespace StableDiffusion.Onnx.Builders;

internal abstract partial class GraphFlavor
{
    /// <summary>
    /// ONNX Runtime's fused CUDA operators, as its Stable Diffusion optimizer (<c>onnxruntime.transformers</c>) produces them
    /// from an export, emitted directly: images stay NHWC between the graph's input and output (no transposes around each
    /// convolution), convolutions are <c>NhwcConv</c> (weights [out, k, k, in]), group norms <c>GroupNorm</c> with the SiLU
    /// fused (float32 scales, as the kernel requires), attention <c>MultiHeadAttention</c> over packed QKV (self) or packed KV
    /// (cross) projections, and GEGLU <c>BiasSplitGelu</c>. A residual sum (<see cref="GraphBuilder.Residual"/>) that a norm
    /// reads first is computed by that norm's operator, which also outputs the sum for the next residual: <c>SkipGroupNorm</c>
    /// (with the skip per channel for a resnet's time embedding), <c>SkipLayerNormalization</c> (with the attention's output
    /// bias), and that operator adds the bias of a convolution whose output only the sum reads (ONNX Runtime would add it in
    /// a kernel of its own); one that no norm takes is a <c>BiasAdd</c> where it has a bias, a linear layer's or its terms'
    /// convolutions' (<see cref="GraphBuilder.ImageResidual"/>), at the widths the kernel takes. Where a CUDA kernel does not take a size (the
    /// kernels are written for Stable Diffusion's widths), the layer falls back to plain operators in the same layout, so any
    /// configuration builds.
    /// </summary>
    private sealed class CudaFusedFlavor : GraphFlavor
    {
        /// <summary>The GEGLU widths ONNX Runtime's BiasSplitGelu kernel takes (its input's last dimension).</summary>
        private static readonly long[] BiasSplitGeluWidths = [2560, 5120, 10240];

        /// <summary>The widths ONNX Runtime's BiasAdd kernel takes (the last dimension of its tokens).</summary>
        private static readonly int[] BiasAddWidths = [320, 640, 1280];

        /// <summary>ONNX Runtime's GroupNorm kernel (SkipGroupNorm's too) handles two channels per thread and at most 32 groups.</summary>
        private const int GroupNormMaxGroups = 32;

        public override long ChannelAxis => 3;

        public override long HeightAxis => 1;

        public override bool UsesMultiHeadAttention => true;

        public override Value FromNchw(Value images) => images.Transpose(0, 2, 3, 1);

        public override Value ToNchw(Value images) => images.Transpose(0, 3, 1, 2);

        public override Value Conv2d(GraphBuilder graph, Value x, int stride, int padding, bool bias)
        {
            long[] shape = graph.ParameterShape("weight");
            // NhwcConv takes its weight as [out, kH, kW, in]: one Transpose of the initializer, folded when the session loads.
            Value weight = graph.Parameter("weight").Transpose(0, 2, 3, 1);
            (string, object)[] attributes =
                [("kernel_shape", new[] { shape[2], shape[3] }), ("strides", new long[] { stride, stride }), ("pads", new long[] { padding, padding, padding, padding }),
                 ("dilations", new long[] { 1, 1 }), ("group", 1L)];
            // ONNX Runtime adds a convolution's bias in a kernel of its own (cuDNN's add-tensor), about a tenth of the UNet's
            // time: a fused norm that takes the output's residual sum adds it instead.
            return bias
                ? graph.NodeWithBias("NhwcConv", [x, weight, graph.Parameter("bias")], GraphBuilder.MicrosoftDomain, attributes)
                : graph.Node("NhwcConv", [x, weight], domain: GraphBuilder.MicrosoftDomain, attributes: attributes);
        }

        public override Value GroupNorm(GraphBuilder graph, Value x, int groups, int channels, float epsilon, bool silu)
        {
            if ((channels / groups) % 2 != 0 || groups > GroupNormMaxGroups)
            {
                return FromNchw(Plain.GroupNorm(graph, ToNchw(x), groups, channels, epsilon, silu));
            }

            ResidualSum? sum = graph.TakeResidual(x);
            Value scale = graph.Parameter("weight", elementType: TensorElementType.Float);
            Value bias = graph.Parameter("bias", elementType: TensorElementType.Float);
            (string, object)[] attributes = [("activation", silu ? 1L : 0L), ("groups", (long)groups), ("epsilon", epsilon), ("channels_last", 1L)];
            return sum is null
                ? graph.Node("GroupNorm", [x, scale, bias], domain: GraphBuilder.MicrosoftDomain, attributes: attributes)
                : graph.NodeWithResidual("SkipGroupNorm", [sum.Input, scale, bias, sum.Skip, sum.Bias], sum, sumOutput: 1, GraphBuilder.MicrosoftDomain, attributes);
        }

        public override Value LayerNorm(GraphBuilder graph, Value x, Value scale, Value bias, float epsilon) =>
            graph.TakeResidual(x) is { } sum
                ? graph.NodeWithResidual("SkipLayerNormalization", [sum.Input, sum.Skip, scale, bias, sum.Bias], sum, sumOutput: 3, GraphBuilder.MicrosoftDomain, ("epsilon", epsilon))
                : base.LayerNorm(graph, x, scale, bias, epsilon);

        public override Value AddResidual(GraphBuilder graph, Value input, Value skip, int channels, Value? bias, bool images)
        {
            if (bias is null || !BiasAddWidths.Contains(channels))
            {
                return base.AddResidual(graph, input, skip, channels, bias, images);
            }

            if (!images)
            {
                return graph.Node("BiasAdd", [input, bias, skip], domain: GraphBuilder.MicrosoftDomain);
            }

            // BiasAdd takes tokens [N, L, C]: NHWC images are that shape already in memory, so the reshapes copy nothing.
            Value sum = graph.Node("BiasAdd", [ToTokens(input, channels), bias, ToTokens(skip, channels)], domain: GraphBuilder.MicrosoftDomain);
            return sum.Reshape(skip.Shape());
        }

        public override bool AddsImageResidualBias(int channels) => BiasAddWidths.Contains(channels);

        public override Value PerChannel(Value vector) => vector.Unsqueeze(1, 2);

        public override Value UpsampleNearest(Value x, Value? sizeOf)
        {
            Value? scales = sizeOf is null ? x.Graph.Constant([1f, 2f, 2f, 1f], [4]) : null;
            Value? sizes = sizeOf is null ? null : Value.Concat(0, x.Shape().Slice([0], [1], [0]), sizeOf.Shape().Slice([1], [3], [0]), x.Shape().Slice([3], [4], [0]));
            return x.Graph.Node("Resize", [x, null, scales, sizes],
                attributes: [("mode", "nearest"), ("coordinate_transformation_mode", "asymmetric"), ("nearest_mode", "floor")]);
        }

        public override Value ToTokens(Value images, int channels) => images.Reshape(0, -1, channels);

        public override Value Attention(GraphBuilder graph, Value x, Value? context, int heads, int headDim, bool projectionBias)
        {
            if (context is null)
            {
                // Self-attention: one projection to [N, L, heads, 3, d], the packed QKV layout MultiHeadAttention reads.
                Value qkv = PackedProjection(graph, x, ["to_q", "to_k", "to_v"], heads, headDim, projectionBias);
                return Builders.Attention.MultiHead(heads, qkv.Reshape(0, 0, heads, 3, headDim));
            }

            // Cross-attention: the query alone, keys and values in one projection to [N, L, heads, 2, d] (packed KV).
            Value kv = PackedProjection(graph, context, ["to_k", "to_v"], heads, headDim, projectionBias);
            return Builders.Attention.MultiHead(heads, graph.Linear("to_q", x, projectionBias), kv.Reshape(0, 0, heads, 2, headDim));
        }

        public override Value GeGlu(GraphBuilder graph, Value x)
        {
            using (graph.Scope("proj"))
            {
                if (BiasSplitGeluWidths.Contains(graph.ParameterShape("weight")[0]))
                {
                    return graph.Node("BiasSplitGelu", [x.Linear(graph.Parameter("weight")), graph.Parameter("bias")], domain: GraphBuilder.MicrosoftDomain);
                }
            }

            return Plain.GeGlu(graph, x);
        }

        private protected override Value Unflatten(Value tokens, int channels, Value height) =>
            tokens.Reshape(Value.Concat(0, tokens.Graph.Int64s(0), height, tokens.Graph.Int64s(-1, channels)));

        /// <summary>
        /// The projections <paramref name="modules"/> (each [heads·d, in]) as one matrix whose rows go head by head, then
        /// module by module within a head, so that the product reshapes to [N, L, heads, modules, d].
        /// </summary>
        private static Value PackedProjection(GraphBuilder graph, Value x, string[] modules, int heads, int headDim, bool bias)
        {
            Value[] weights = new Value[modules.Length];
            Value[] biases = new Value[modules.Length];
            long inFeatures = 0;
            for (int i = 0; i < modules.Length; i++)
            {
                using var scope = graph.Scope(modules[i]);
                inFeatures = graph.ParameterShape("weight")[1];
                weights[i] = graph.Parameter("weight", [heads, 1, headDim, inFeatures]);
                biases[i] = bias ? graph.Parameter("bias", [heads, 1, headDim]) : null!;
            }

            Value packed = Value.Concat(1, weights).Reshape(-1, inFeatures);
            Value product = x.Linear(packed);
            return bias ? product + Value.Concat(1, biases).Reshape(-1) : product;
        }
    }
}
