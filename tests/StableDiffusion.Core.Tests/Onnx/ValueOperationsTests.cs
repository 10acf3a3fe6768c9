using StableDiffusion.Core.Tests.Onnx.Support;
using StableDiffusion.Onnx;
using StableDiffusion.Testing;
using Xunit;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace StableDiffusion.Core.Tests.Onnx;

/// <summary>The operators of <see cref="Value"/> run by ONNX Runtime against the same functions computed here.</summary>
[Trait("Area", "WeightsLoading")]
public sealed class ValueOperationsTests
{
    private static readonly Dictionary<string, (Func<Value, Value> Graph, Func<double, double> Reference)> Functions = new()
    {
        ["silu"] = (x => x.Silu(), x => x / (1 + Math.Exp(-x))),
        ["gelu"] = (x => x.Gelu(), x => 0.5 * x * (1 + Erf(x / Math.Sqrt(2)))),
        ["gelu-tanh"] = (x => x.GeluTanh(), x => 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + (0.044715 * x * x * x))))),
        ["quick-gelu"] = (x => x.QuickGelu(), x => x / (1 + Math.Exp(-1.702 * x))),
        ["sin, cos, exp"] = (x => x.Sin() + x.Cos() + x.Exp(), x => Math.Sin(x) + Math.Cos(x) + Math.Exp(x)),
        ["pow, sqrt"] = (x => (x * x).Sqrt() + x.Pow(2f), x => Math.Abs(x) + (x * x)),
        ["scalar arithmetic"] = (x => ((1f - x) / 2f) + (3f * x) - (x / 4f) + (-x), x => ((1 - x) / 2) + (3 * x) - (x / 4) - x),
    };

    public static TheoryData<string> FunctionNames => new(Functions.Keys);

    [Theory]
    [MemberData(nameof(FunctionNames))]
    public void ElementWiseFunctions_MatchTheirDefinitions(string name)
    {
        (Func<Value, Value> build, Func<double, double> reference) = Functions[name];
        float[] input = [.. GraphRunner.Random(64, seed: 1).Select(v => v * 4)];

        float[] actual = RunUnary(build, input, [8, 8]);

        ArrayAssert.Close([.. input.Select(v => (float)reference(v))], actual, 2e-5, name);
    }

    [Fact]
    public void UpsampleNearest_RepeatsEachPixelAsPyTorchDoes()
    {
        float[] input = [1, 2, 3, 4, 5, 6];

        float[] actual = RunUnary(x => x.UpsampleNearest(2), input, [1, 1, 2, 3]);

        Assert.Equal([1f, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 4, 4, 5, 5, 6, 6], actual);
    }

    [Fact]
    public void ShapeOperations_SliceSplitConcatTransposeGather()
    {
        float[] input = [.. Enumerable.Range(0, 12).Select(i => (float)i)]; // [3, 4]

        float[] actual = RunUnary(x =>
        {
            Value[] halves = x.Split(1, 1, 3);           // [3, 1] and [3, 3]
            Value swapped = Value.Concat(1, halves[1], halves[0]);
            Value rows = swapped.Gather(x.Graph.Int64s(2, 0)); // rows 2 and 0
            return rows.Transpose(1, 0).Slice([1], [4], [0]).Reshape(-1);
        }, input, [3, 4]);

        // swapped rows: [1 2 3 0], [5 6 7 4], [9 10 11 8]; rows 2, 0 transposed: [[9,1],[10,2],[11,3],[8,0]]; rows 1..3.
        Assert.Equal([10f, 2, 11, 3, 8, 0], actual);
    }

    [Fact]
    public void ArgMaxAndGather_PickTheEndTokenOfEachRow_AsClipPools()
    {
        // Token ids [2, 4] (the end token has the largest id) and hidden states [2, 4, 1] = id * 10 + position.
        var graph = new GraphBuilder();
        Value ids = graph.Input("ids", TensorElementType.Float, 2, 4);
        Value hidden = graph.Input("hidden", TensorElementType.Float, 2, 4, 1);
        Value end = ids.ArgMax(1);
        Value flat = hidden.Reshape(-1, 1);
        Value rowStarts = graph.Int64s(0, 4);
        Value pooled = flat.Gather(end + rowStarts).Reshape(-1);
        graph.Output(pooled, "pooled", 2);
        using var session = GraphRunner.Session(graph.ToBytes());

        (float[] actual, _) = GraphRunner.Run(session, ("ids", [5, 49407, 7, 0, 0, 3, 9, 49407], [2, 4]), ("hidden", [50, 11, 70, 0, 0, 31, 92, 83], [2, 4, 1]));

        Assert.Equal([11f, 83], actual);
    }

    [Fact]
    public void Einsum_ComputesBatchedProducts()
    {
        var graph = new GraphBuilder();
        Value a = graph.Input("a", TensorElementType.Float, 2, 3);
        Value b = graph.Input("b", TensorElementType.Float, 2, 3);
        graph.Output(Value.Einsum("ij,kj->ik", a, b), "c", 2, 2);
        using var session = GraphRunner.Session(graph.ToBytes());

        (float[] actual, _) = GraphRunner.Run(session, ("a", [1, 2, 3, 4, 5, 6], [2, 3]), ("b", [1, 0, 0, 0, 1, 1], [2, 3]));

        Assert.Equal([1f, 5, 4, 11], actual);
    }

    [Fact]
    public void Softmax_OfEachRow_SumsToOne()
    {
        float[] input = GraphRunner.Random(12, seed: 2);

        float[] actual = RunUnary(x => x.Softmax(), input, [3, 4]);

        for (int row = 0; row < 3; row++)
        {
            double[] e = [.. input.Skip(row * 4).Take(4).Select(v => Math.Exp(v))];
            ArrayAssert.Close([.. e.Select(v => (float)(v / e.Sum()))], actual.AsSpan(row * 4, 4), 1e-6, $"row {row}");
        }
    }

    private static float[] RunUnary(Func<Value, Value> build, float[] input, long[] shape)
    {
        var graph = new GraphBuilder();
        Value x = graph.Input("x", TensorElementType.Float, [.. shape.Select(d => (Dim)d)]);
        graph.Output(build(x), "y");
        return GraphRunner.Run(graph.ToBytes(), null, ("x", input, shape)).Values;
    }

    // erf by its Maclaurin series (|x| <= 3 here; double precision keeps it to 1e-12).
    private static double Erf(double x)
    {
        double sum = 0, term = x;
        for (int n = 0; n < 200; n++)
        {
            sum += term / ((2 * n) + 1);
            term *= -x * x / (n + 1);
        }

        return 2 / Math.Sqrt(Math.PI) * sum;
    }
}
