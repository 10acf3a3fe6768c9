using System.Numerics.Tensors;
using BenchmarkDotNet.Attributes;
using Microsoft.ML.OnnxRuntime;
using StableDiffusion.Safety;

namespace StableDiffusion.Benchmarks.Safety;

/// <summary>
/// CLIP pre-processing of one decoded image (512 x 512, SD 1.5's size, and 64 x 64, the tiny fixture's) with each
/// backend, and the whole check on the tiny fixture's safety checker next to its bare ONNX Runtime run, so that the
/// checker's own share shows. Fixtures: SD_FIXTURES, default ../shared/fixtures. Results: docs/safety.md.
/// </summary>
[MemoryDiagnoser]
public class SafetyCheckerBenchmarks
{
    private ClipImageProcessor _torchvision = null!;
    private ClipImageProcessor _pil = null!;
    private SafetyChecker _checker = null!;
    private InferenceSession _session = null!;
    private Tensor<float> _image512 = null!;
    private Tensor<float> _image64 = null!;
    private float[] _clip64 = null!;
    private float[] _pixels64 = null!;

    [GlobalSetup]
    public void Setup()
    {
        string fixtures = BenchmarkFixtures.Folder;
        string model = Path.Combine(fixtures, "tiny-sd-onnx");
        string config = Path.Combine(model, "feature_extractor", "preprocessor_config.json");
        _torchvision = ClipImageProcessor.Load(config);
        _pil = new ClipImageProcessor(ClipImageProcessorConfig.Load(config) with { Backend = ImageProcessorBackend.Pil });
        _checker = SafetyChecker.Load(Path.Combine(model, "safety_checker", "model.onnx"), config);
        _session = new InferenceSession(Path.Combine(model, "safety_checker", "model.onnx"));

        var random = new Random(42);
        _image512 = Tensor.Create(Enumerable.Range(0, 512 * 512 * 3).Select(_ => random.NextSingle()).ToArray(), [1, 512, 512, 3]);
        _pixels64 = [.. Enumerable.Range(0, 64 * 64 * 3).Select(_ => random.NextSingle())];
        _image64 = Tensor.Create(_pixels64, [1, 64, 64, 3]);
        _clip64 = new float[3 * 224 * 224];
        _torchvision.Preprocess(_image64).FlattenTo(_clip64);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _checker.Dispose();
        _session.Dispose();
    }

    [Benchmark(Baseline = true)]
    public Tensor<float> Preprocess512Torchvision() => _torchvision.Preprocess(_image512);

    [Benchmark]
    public Tensor<float> Preprocess512Pil() => _pil.Preprocess(_image512);

    [Benchmark]
    public Tensor<float> Preprocess64Torchvision() => _torchvision.Preprocess(_image64);

    [Benchmark]
    public SafetyCheckerResult CheckTinyModel64() => _checker.Check(_image64);

    /// <summary>The tiny graph alone, fed the same inputs: what ONNX Runtime takes of <see cref="CheckTinyModel64"/>.</summary>
    [Benchmark]
    public bool GraphOnlyTinyModel64()
    {
        using OrtValue clip = OrtValue.CreateTensorValueFromMemory(_clip64, [1, 3, 224, 224]);
        using OrtValue images = OrtValue.CreateTensorValueFromMemory(_pixels64, [1, 64, 64, 3]);
        using var runOptions = new RunOptions();
        using var outputs = _session.Run(runOptions, [SafetyChecker.ClipInputName, SafetyChecker.ImagesInputName], [clip, images], [SafetyChecker.HasNsfwConceptsName]);
        return outputs[0].GetTensorDataAsSpan<bool>()[0];
    }
}
