using System.Numerics.Tensors;
using StableDiffusion.Core.Tests.EndToEnd.Support;
using StableDiffusion.Core.Tests.Hardening.Support;
using StableDiffusion.Models;
using StableDiffusion.Pipelines;
using StableDiffusion.Schedulers;
using StableDiffusion.Testing;
using Xunit;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace StableDiffusion.Core.Tests.EndToEnd;

/// <summary>
/// A UNet that takes an input beyond sample, timestep and prompt embeddings (here <c>timestep_cond</c>, a per-channel offset
/// [batch, 4] added to the prediction, standing in for LCM's guidance embedding, SDXL's added conditions or ControlNet
/// residuals) runs through the public pipeline with an <see cref="IUNetInputContributor"/> supplying it, and nothing in the
/// SDK knows the input's name. The fixture's folder is copied with only its UNet replaced by graphs built here.
/// </summary>
[Trait("Area", "Architecture")]
public sealed class UNetInputTests
{
    private const string Condition = "timestep_cond";

    private static readonly float[] Offset = [0.5f, -0.25f, 1f, 2f];

    // Two prompts with guidance: a UNet batch of 4 rows, unconditional ones first.
    private static readonly TextToImageRequest TwoCastles = new("a castle on a hill")
    {
        Prompts = ["a castle on a hill", "a lighthouse"], Seed = 3, NumInferenceSteps = 4, Height = 64, Width = 64,
    };

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static StableDiffusionPipelineOptions WithoutSafetyChecker => new() { EnableSafetyChecker = false };

    [Fact]
    public async Task ExtraInput_FromAContributor_ReachesTheGraphExactly()
    {
        // The same offset built into the graph as a constant is what the contributor's values must reproduce, bit for bit.
        using ModelFolderCopy withInput = Model(ConventionGraphs.UNetWithOffset(Condition));
        using ModelFolderCopy withConstant = Model(ConventionGraphs.UNetWithOffset(Condition, constant: Offset));
        using ModelFolderCopy without = Model(ConventionGraphs.UNet(TensorElementType.Float, TensorElementType.Float, [1]));
        var contributor = new RecordingOffset(Offset);

        using GenerationResult expected = await GenerateAsync(withConstant, TwoCastles);
        using GenerationResult actual = await GenerateAsync(withInput, TwoCastles with { UNetInputs = [contributor] });
        using GenerationResult plain = await GenerateAsync(without, TwoCastles);

        ResultAssert.Identical(expected, actual, "timestep_cond from a contributor vs the same offset built into the graph");
        ResultAssert.Different(plain, actual, "a UNet with the offset vs one without");
        IScheduler schedule = Pndm();
        schedule.SetTimesteps(TwoCastles.NumInferenceSteps);
        Assert.Equal(schedule.Timesteps, contributor.Steps.Select(s => s.Timestep));
        Assert.Equal(Enumerable.Range(0, contributor.Steps.Count), contributor.Steps.Select(s => s.Index));
        Assert.All(contributor.Steps, s => Assert.Equal((schedule.Timesteps.Count, true), (s.Count, s.Guided)));
        Assert.Equal([4L, 4L], contributor.Shape);
    }

    [Fact]
    public async Task ExtraInput_KeepsItsValueBetweenSteps_AndTakesNewOnesWhenWritten()
    {
        using ModelFolderCopy model = Model(ConventionGraphs.UNetWithOffset(Condition));
        using StableDiffusionPipeline pipe = await StableDiffusionPipeline.FromPretrainedAsync(model.Path, WithoutSafetyChecker, Ct);

        using GenerationResult everyStep = await pipe.GenerateAsync(TwoCastles with { UNetInputs = [new RecordingOffset(Offset)] }, Ct);
        using GenerationResult firstStepOnly = await pipe.GenerateAsync(TwoCastles with { UNetInputs = [new RecordingOffset(Offset, firstStepOnly: true)] }, Ct);
        using GenerationResult growing = await pipe.GenerateAsync(TwoCastles with { UNetInputs = [new RecordingOffset(Offset, growing: true)] }, Ct);

        ResultAssert.Identical(everyStep, firstStepOnly, "an offset written every step vs written once");
        ResultAssert.Different(everyStep, growing, "a constant offset vs one that grows with the step");
    }

    [Fact]
    public async Task MissingExtraInput_FailsBeforeTheRun_NamingTheInput()
    {
        using ModelFolderCopy model = Model(ConventionGraphs.UNetWithOffset(Condition));
        using StableDiffusionPipeline pipe = await StableDiffusionPipeline.FromPretrainedAsync(model.Path, WithoutSafetyChecker, Ct);
        var stages = new List<GenerationStage>();

        var ex = Assert.Throws<ArgumentException>(() => pipe.Generate(TwoCastles, new SynchronousProgress(p => stages.Add(p.Stage)), Ct));

        Assert.Equal(nameof(DiffusionRequest.UNetInputs), ex.ParamName);
        Assert.Contains($"'{Condition}'", ex.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(IUNetInputContributor), ex.Message, StringComparison.Ordinal);
        Assert.Empty(stages);
        Assert.Equal([Condition], pipe.UNet.ExtraInputNames);
    }

    [Fact]
    public async Task ContributorOfAnInputTheUNetLacks_FailsNamingIt()
    {
        using ModelFolderCopy model = Model(ConventionGraphs.UNet(TensorElementType.Float, TensorElementType.Float, [1]));
        using StableDiffusionPipeline pipe = await StableDiffusionPipeline.FromPretrainedAsync(model.Path, WithoutSafetyChecker, Ct);

        var unknown = Assert.Throws<ArgumentException>(() => pipe.Generate(TwoCastles with { UNetInputs = [new RecordingOffset(Offset)] }, cancellationToken: Ct));
        var core = Assert.Throws<ArgumentException>(() => pipe.Generate(TwoCastles with { UNetInputs = [new RecordingOffset(Offset, name: "timestep")] }, cancellationToken: Ct));

        Assert.Contains($"'{Condition}', which the UNet", unknown.Message, StringComparison.Ordinal);
        Assert.Contains("'timestep', which the pipeline fills itself", core.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ExtraInput_WithADimensionTheGraphLeavesOpen_TakesTheContributorsShape()
    {
        using ModelFolderCopy open = Model(ConventionGraphs.UNetWithOffset(Condition, dimensions: ["batch", "condition_size"]));
        using ModelFolderCopy withConstant = Model(ConventionGraphs.UNetWithOffset(Condition, constant: Offset));
        using StableDiffusionPipeline pipe = await StableDiffusionPipeline.FromPretrainedAsync(open.Path, WithoutSafetyChecker, Ct);

        var unsized = Assert.Throws<ArgumentException>(() => pipe.Generate(TwoCastles with { UNetInputs = [new RecordingOffset(Offset)] }, cancellationToken: Ct));
        using GenerationResult actual = await pipe.GenerateAsync(TwoCastles with { UNetInputs = [new RecordingOffset(Offset, sized: true)] }, Ct);
        using GenerationResult expected = await GenerateAsync(withConstant, TwoCastles);

        Assert.Contains("'condition_size'", unsized.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(IUNetInputContributor.ShapeOf), unsized.Message, StringComparison.Ordinal);
        ResultAssert.Identical(expected, actual, "an open dimension sized by the contributor vs the offset built in");
    }

    [Fact]
    public void UNetModelAlone_TakesContributors()
    {
        using ModelFolderCopy withInput = Model(ConventionGraphs.UNetWithOffset(Condition));
        using ModelFolderCopy withConstant = Model(ConventionGraphs.UNetWithOffset(Condition, constant: Offset));
        using UNetModel unet = UNetModel.Load(withInput.PathOf("unet/model.onnx"));
        using UNetModel reference = UNetModel.Load(withConstant.PathOf("unet/model.onnx"));
        Tensor<float> sample = Tensor.Create(Enumerable.Range(0, 2 * 4 * 8 * 8).Select(i => i * 0.01f).ToArray(), [2, 4, 8, 8]);
        Tensor<float> hidden = Tensor.Create(Enumerable.Range(0, 2 * 77 * 32).Select(i => i * 1e-4f).ToArray(), [2, 77, 32]);
        Tensor<float> actual = Tensor.CreateFromShape<float>([2, 4, 8, 8]), expected = Tensor.CreateFromShape<float>([2, 4, 8, 8]);

        unet.Predict(sample, 501f, hidden, actual, [new RecordingOffset(Offset)]);
        reference.Predict(sample, 501f, hidden, expected);
        var missing = Assert.Throws<ArgumentException>(() => unet.Predict(sample, 501f, hidden, actual));

        Assert.Equal(expected.AsSpan().ToArray(), actual.AsSpan().ToArray());
        Assert.Contains($"'{Condition}'", missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DenoisingSteps_WithAContributor_AllocateNoMoreThanOnnxRuntimesOwnRun()
    {
        // Each step's managed allocations, read at the end of every step on the generating thread: the pipeline's own
        // work (scaling, guidance, the scheduler, the contributor, the bindings) adds nothing to what ONNX Runtime's Run
        // allocates for its name and handle arrays, the same for every step.
        using ModelFolderCopy model = Model(ConventionGraphs.UNetWithOffset(Condition));
        using StableDiffusionPipeline pipe = await StableDiffusionPipeline.FromPretrainedAsync(model.Path, WithoutSafetyChecker, Ct);
        var atStepEnd = new long[12];
        TextToImageRequest request = TwoCastles with
        {
            NumInferenceSteps = atStepEnd.Length,
            Scheduler = SchedulerFactory.Create("DDIM", pipe.Scheduler.Config),
            UNetInputs = [new RecordingOffset(Offset, record: false)],
            OnStepEnd = step => atStepEnd[step.StepIndex] = GC.GetAllocatedBytesForCurrentThread(),
        };
        using GenerationResult warmUp = pipe.Generate(request, cancellationToken: Ct);

        using GenerationResult result = pipe.Generate(request, cancellationToken: Ct);

        long[] perStep = [.. atStepEnd.Skip(1).Zip(atStepEnd, (after, before) => after - before)];
        long onnxRuntime = OnnxRuntimeRunAllocation(pipe.UNet);
        TestContext.Current.TestOutputHelper?.WriteLine($"bytes per step: {string.Join(", ", perStep)}; ONNX Runtime's Run alone: {onnxRuntime}");
        Assert.All(perStep, bytes => Assert.True(bytes <= onnxRuntime, $"A step allocated {bytes} bytes; ONNX Runtime's Run alone allocates {onnxRuntime}."));
    }

    /// <summary>What one <c>InferenceSession.Run</c> with preallocated inputs and outputs allocates in managed memory.</summary>
    private static long OnnxRuntimeRunAllocation(UNetModel unet)
    {
        using Microsoft.ML.OnnxRuntime.OrtValue sample = Value([4, 4, 8, 8]), timestep = Value([1]), hidden = Value([4, 77, 32]), condition = Value([4, 4]), output = Value([4, 4, 8, 8]);
        using var options = new Microsoft.ML.OnnxRuntime.RunOptions();
        string[] names = [.. unet.Session.InputNames];
        Microsoft.ML.OnnxRuntime.OrtValue[] inputs = [.. names.Select(n => n switch { "sample" => sample, "timestep" => timestep, "encoder_hidden_states" => hidden, _ => condition })];
        string[] outputNames = ["out_sample"];
        Microsoft.ML.OnnxRuntime.OrtValue[] outputs = [output];
        long least = long.MaxValue;
        for (int i = 0; i < 4; i++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            unet.Session.Run(options, names, inputs, outputNames, outputs);
            least = Math.Min(least, GC.GetAllocatedBytesForCurrentThread() - before);
        }

        return least;

        static Microsoft.ML.OnnxRuntime.OrtValue Value(long[] shape) =>
            Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(new float[shape.Aggregate(1L, (a, b) => a * b)], shape);
    }

    private static IScheduler Pndm() => SchedulerFactory.FromConfig(SchedulerConfig.Load(Fixtures.PathOf("tiny-sd-onnx/scheduler/scheduler_config.json")));

    /// <summary>The tiny fixture with its UNet replaced by <paramref name="unet"/> (its text encoder and VAE as they are).</summary>
    private static ModelFolderCopy Model(byte[] unet)
    {
        ModelFolderCopy folder = ModelFolderCopy.Of(Fixtures.TinyModel);
        folder.Delete("unet/weights.pb");
        folder.Write("unet/model.onnx", unet);
        return folder;
    }

    private static async Task<GenerationResult> GenerateAsync(ModelFolderCopy model, TextToImageRequest request)
    {
        using StableDiffusionPipeline pipe = await StableDiffusionPipeline.FromPretrainedAsync(model.Path, WithoutSafetyChecker, Ct);
        return await pipe.GenerateAsync(request, Ct);
    }

    /// <summary>Writes <c>offset</c> on every row of the input (scaled by the step when growing), recording the calls it sees.</summary>
    private sealed class RecordingOffset(float[] offset, bool firstStepOnly = false, bool growing = false, bool sized = false, bool record = true, string name = Condition)
        : IUNetInputContributor
    {
        private float[] _rows = [];

        public IReadOnlyCollection<string> InputNames { get; } = [name];

        public List<UNetStep> Steps { get; } = [];

        public long[] Shape { get; private set; } = [];

        public long[]? ShapeOf(string inputName, ReadOnlySpan<long> sampleShape) => sized ? [sampleShape[0], offset.Length] : null;

        public void Contribute(in UNetStep step, UNetInputs inputs)
        {
            if (record)
            {
                Steps.Add(step);
            }

            if (firstStepOnly && step.Index > 0)
            {
                return;
            }

            UNetInput input = inputs[name];
            if (_rows.Length != input.Length)
            {
                Shape = input.Shape.ToArray();
                _rows = new float[input.Length];
            }

            float scale = growing ? step.Index + 1 : 1;
            for (int i = 0; i < _rows.Length; i++)
            {
                _rows[i] = offset[i % offset.Length] * scale;
            }

            input.Write(_rows);
        }
    }

    /// <summary>Reports on the calling thread (<see cref="Progress{T}"/> would post to the thread pool, after the call returns).</summary>
    private sealed class SynchronousProgress(Action<GenerationProgress> report) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => report(value);
    }
}
