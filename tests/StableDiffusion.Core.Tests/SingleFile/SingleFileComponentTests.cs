using Microsoft.ML.OnnxRuntime;
using StableDiffusion.Core.Tests.Onnx.Support;
using StableDiffusion.Core.Tests.Weights;
using StableDiffusion.Core.Tests.Weights.Support;
using StableDiffusion.Loading.SingleFile;
using StableDiffusion.Models;
using StableDiffusion.Onnx;
using StableDiffusion.Onnx.Builders;
using StableDiffusion.Testing;
using StableDiffusion.Weights;
using Xunit;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace StableDiffusion.Core.Tests.SingleFile;

/// <summary>
/// Each component built from the original-layout single file (tiny-sd's weights stored as float16, read in place through
/// the original key names) against the same component built from tiny-sd's diffusers folder with its weights rounded to
/// float16 the same way: the same weights under other names, so one call of each gives the same numbers.
/// </summary>
[Trait("Area", "WeightsLoading")]
public sealed class SingleFileComponentTests : IDisposable
{
    // Both graphs compute in float32 from the same float16 values with the same operators, so they agree exactly.
    private const double Tolerance = 0;

    private readonly string _folder = Directory.CreateTempSubdirectory("sd-single-file-").FullName;
    private readonly List<SafetensorsFile> _opened = [];

    /// <summary>The single file as stored (float16), and rewritten as float32.</summary>
    public static TheoryData<string> StoredTypes => ["F16", "F32"];

    public void Dispose()
    {
        _opened.ForEach(file => file.Dispose());
        Directory.Delete(_folder, recursive: true);
    }

    [Theory]
    [MemberData(nameof(StoredTypes))]
    public void UNet_OneCall_EqualsTheDiffusersFolderRoundedToFloat16(string dtype)
    {
        Fixtures.Require();
        using SingleFileCheckpoint checkpoint = SingleFileCheckpoint.Open(SingleFile(dtype));
        Assert.Equal(CheckpointKind.StableDiffusion1, checkpoint.Kind);
        (ComponentConfig config, SafetensorsParameters parameters) = checkpoint.UNet(BaseConfig("unet"), TensorElementType.Float);

        float[] fromFile = RunUNet(config, parameters, inChannels: 4);
        float[] fromFolder = RunUNet(BaseConfig("unet"), Rounded("tiny-sd/unet/diffusion_pytorch_model.safetensors"), inChannels: 4);

        ArrayAssert.Close(fromFolder, fromFile, Tolerance, $"UNet output from the {dtype} single file");
    }

    [Theory]
    [MemberData(nameof(StoredTypes))]
    public void Vae_DecodeAndEncode_EqualTheDiffusersFolderRoundedToFloat16(string dtype)
    {
        Fixtures.Require();
        using SingleFileCheckpoint checkpoint = SingleFileCheckpoint.Open(SingleFile(dtype));
        (ComponentConfig config, SafetensorsParameters parameters) = checkpoint.Vae(BaseConfig("vae"), TensorElementType.Float);
        SafetensorsParameters rounded = Rounded("tiny-sd/vae/diffusion_pytorch_model.safetensors");
        float[] latents = [.. GraphRunner.Random(2 * 4 * 8 * 8, seed: 3).Select(v => v * 3)];
        float[] images = GraphRunner.Random(3 * 64 * 64, seed: 4);

        ArrayAssert.Close(RunVae(BaseConfig("vae"), rounded, decode: true, latents), RunVae(config, parameters, decode: true, latents), Tolerance, $"decoded images from the {dtype} single file");
        ArrayAssert.Close(RunVae(BaseConfig("vae"), rounded, decode: false, images), RunVae(config, parameters, decode: false, images), Tolerance, $"latent means from the {dtype} single file");
    }

    [Theory]
    [MemberData(nameof(StoredTypes))]
    public void TextEncoder_PromptEmbeddings_EqualTheDiffusersFolderRoundedToFloat16(string dtype)
    {
        Fixtures.Require();
        using SingleFileCheckpoint checkpoint = SingleFileCheckpoint.Open(SingleFile(dtype));
        (ComponentConfig config, SafetensorsParameters parameters) = checkpoint.TextEncoder(BaseConfig("text_encoder"), TensorElementType.Float);
        int[] ids = [49406, 320, 1929, 539, 320, 2368, 49407, .. Enumerable.Repeat(49407, 70)];

        float[] fromFile = RunTextEncoder(config, parameters, ids);
        float[] fromFolder = RunTextEncoder(BaseConfig("text_encoder"), Rounded("tiny-sd/text_encoder/model.safetensors"), ids);

        ArrayAssert.Close(fromFolder, fromFile, Tolerance, $"prompt embeddings from the {dtype} single file");
    }

    [Fact]
    public void UNet_OfAFileWithEmaWeights_IsTheNonEmaOne()
    {
        // diffusers' from_single_file leaves extract_ema off: model.diffusion_model.* is the UNet, model_ema.* is ignored.
        Fixtures.Require();
        using SafetensorsFile source = SafetensorsFile.Open(SingleFile("F16"));
        var tensors = Tensors(source, name => name).ToList();
        tensors.AddRange(source.Tensors.Where(t => t.Name.StartsWith(LdmKeyLayout.UNetPrefix, StringComparison.Ordinal)).Select(t => new SafetensorsWriter.Tensor(
            "model_ema." + t.Name["model.".Length..].Replace(".", "", StringComparison.Ordinal), "F16", t.Shape, new byte[t.Length])));
        tensors.Add(SafetensorsWriter.Tensor.Float32("model_ema.decay", [], [0.9999f]));
        string path = Path.Combine(_folder, "with-ema.safetensors");
        SafetensorsWriter.Write(path, tensors);

        using SingleFileCheckpoint withEma = SingleFileCheckpoint.Open(path);
        using SingleFileCheckpoint plain = SingleFileCheckpoint.Open(SingleFile("F16"));
        (ComponentConfig config, SafetensorsParameters parameters) = withEma.UNet(BaseConfig("unet"), TensorElementType.Float);
        (_, SafetensorsParameters plainParameters) = plain.UNet(BaseConfig("unet"), TensorElementType.Float);

        ArrayAssert.Close(RunUNet(config, plainParameters, 4), RunUNet(config, parameters, 4), 0, "UNet output with EMA weights in the file");
    }

    [Fact]
    public void TorchCheckpoint_IsReadWithoutRunningItAndGivesTheSameUNet()
    {
        // The single file's tensors in a .ckpt as Lightning saves it (the weights under "state_dict", the step beside them).
        Fixtures.Require();
        using SafetensorsFile source = SafetensorsFile.Open(SingleFile("F16"));
        var stateDict = new PyOrderedDict([.. source.Tensors.Select(t => ((object?)t.Name, (object?)SavedTensor.Contiguous(
            new SavedStorage(TensorElementType.Float16, source.GetBytes(t).ToArray()), t.Shape)))]);
        string path = Path.Combine(_folder, "model.ckpt");
        TorchSave.Save(path, new PyDict(("state_dict", stateDict), ("global_step", 470000L)));
        string[] copiesBefore = TemporaryCopies();

        (ComponentConfig config, SafetensorsParameters parameters) unet;
        float[] fromCheckpoint;
        using (SingleFileCheckpoint checkpoint = SingleFileCheckpoint.Open(path))
        {
            Assert.Equal(CheckpointKind.StableDiffusion1, checkpoint.Kind);
            Assert.Equal(path, checkpoint.Path);
            unet = checkpoint.UNet(BaseConfig("unet"), TensorElementType.Float);
            fromCheckpoint = RunUNet(unet.config, unet.parameters, 4);
        }

        using SingleFileCheckpoint safetensors = SingleFileCheckpoint.Open(SingleFile("F16"));
        ArrayAssert.Close(RunUNet(unet.config, safetensors.UNet(BaseConfig("unet"), TensorElementType.Float).Parameters, 4), fromCheckpoint, 0, "UNet output from the .ckpt");
        Assert.Equal(copiesBefore, TemporaryCopies());
    }

    [Fact]
    public void TorchCheckpointWithCode_IsRefusedNamingTheGlobal()
    {
        string path = Path.Combine(_folder, "payload.ckpt");
        TorchSave.SavePickle(path, PickleBytes.Protocol(2).Global("posix", "system").Unicode("id").Tuple1().Reduce().Stop().ToArray());

        var ex = Assert.Throws<UnsafePickleException>(() => SingleFileCheckpoint.Open(path));

        Assert.Equal("posix.system", ex.GlobalName);
        Assert.Equal(path, ex.Path);
    }

    [Fact]
    public void InpaintingCheckpoint_NineChannels_TakesInChannelsFromTheFile()
    {
        Fixtures.Require();
        string path = InpaintingSingleFile();

        using SingleFileCheckpoint checkpoint = SingleFileCheckpoint.Open(path);
        (ComponentConfig config, SafetensorsParameters parameters) = checkpoint.UNet(BaseConfig("unet"), TensorElementType.Float);

        Assert.Equal(CheckpointKind.StableDiffusion1Inpainting, checkpoint.Kind);
        Assert.Equal(SingleFileCheckpoint.DefaultInpaintingBaseModel, checkpoint.DefaultBase);
        Assert.Equal(9, UNet2DConditionModel.FromConfig(config).InChannels);
        ArrayAssert.Close(
            RunUNet(ComponentConfig.Load(Fixtures.PathOf("tiny-sd-inpaint-unet/config.json")), Rounded("tiny-sd-inpaint-unet/diffusion_pytorch_model.safetensors"), 9),
            RunUNet(config, parameters, 9), Tolerance, "inpainting UNet output from the single file");
    }

    [Fact]
    public void TextToImageCheckpoint_KeepsTheBaseModelsInChannels()
    {
        Fixtures.Require();
        using SingleFileCheckpoint checkpoint = SingleFileCheckpoint.Open(SingleFile("F16"));

        (ComponentConfig config, _) = checkpoint.UNet(BaseConfig("unet"), TensorElementType.Float);

        Assert.Equal(4, UNet2DConditionModel.FromConfig(config).InChannels);
        Assert.Equal(SingleFileCheckpoint.DefaultBaseModel, checkpoint.DefaultBase);
    }

    [Fact]
    public void WeightTheFileLacks_NamesTheOriginalKeyAndTheDiffusersOne()
    {
        Fixtures.Require();
        using SafetensorsFile source = SafetensorsFile.Open(SingleFile("F16"));
        const string Missing = "model.diffusion_model.output_blocks.1.1.conv.weight";
        string path = Path.Combine(_folder, "missing.safetensors");
        SafetensorsWriter.Write(path, Tensors(source, name => name == Missing ? null : name));
        using SingleFileCheckpoint checkpoint = SingleFileCheckpoint.Open(path);
        (ComponentConfig config, SafetensorsParameters parameters) = checkpoint.UNet(BaseConfig("unet"), TensorElementType.Float);

        var ex = Assert.Throws<ModelLoadException>(() => UNet2DConditionModel.FromConfig(config).BuildGraph(new GraphBuilder(parameters: parameters)));

        Assert.Contains($"'{path}'", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"'{Missing}' (the model's 'up_blocks.0.upsamplers.0.conv.weight')", ex.Message, StringComparison.Ordinal);
    }

    private static string[] TemporaryCopies() => [.. Directory.GetFiles(Path.GetTempPath(), "sdnet-checkpoint-*").Order(StringComparer.Ordinal)];

    private static ComponentConfig BaseConfig(string component) => ComponentConfig.Load(Fixtures.PathOf($"tiny-sd/{component}/config.json"));

    private static IEnumerable<SafetensorsWriter.Tensor> Tensors(SafetensorsFile source, Func<string, string?> rename) =>
        source.Tensors.Where(t => rename(t.Name) is not null).Select(t => new SafetensorsWriter.Tensor(rename(t.Name)!, t.DType, t.Shape, source.GetBytes(t).ToArray()));

    private string SingleFile(string dtype)
    {
        string stored = Fixtures.PathOf("tiny-sd-single-file.fp16.safetensors");
        if (dtype == "F16")
        {
            return stored;
        }

        using SafetensorsFile source = SafetensorsFile.Open(stored);
        return WeightFiles.Rewrite(source, Path.Combine(_folder, "single-file.f32.safetensors"), name => name, dtype);
    }

    // A diffusers component's weights rounded to float16, as the single file stores them, in a folder of its own.
    private SafetensorsParameters Rounded(string relative)
    {
        string folder = Directory.CreateDirectory(Path.Combine(_folder, relative.Replace('/', '-'))).FullName;
        using (SafetensorsFile source = SafetensorsFile.Open(Fixtures.PathOf(relative)))
        {
            WeightFiles.Rewrite(source, Path.Combine(folder, "weights.safetensors"), name => name, "F16");
        }

        _opened.Add(SafetensorsFile.Open(Path.Combine(folder, "weights.safetensors")));
        return new SafetensorsParameters([_opened[^1]]);
    }

    // The single file with tiny-sd-inpaint-unet's UNet in place of its own, under the original names.
    private string InpaintingSingleFile()
    {
        using SafetensorsFile single = SafetensorsFile.Open(SingleFile("F16"));
        using SafetensorsFile unet = SafetensorsFile.Open(Fixtures.PathOf("tiny-sd-inpaint-unet/diffusion_pytorch_model.safetensors"));
        LdmKeyLayout layout = LdmKeyLayout.ForUNet(UNet2DConditionModel.FromConfig(ComponentConfig.Load(Fixtures.PathOf("tiny-sd-inpaint-unet/config.json"))));
        string unetFile = WeightFiles.Rewrite(unet, Path.Combine(_folder, "inpaint-unet.safetensors"), name => layout.FileKey(name)!.Value.FileKey, "F16");
        using SafetensorsFile renamed = SafetensorsFile.Open(unetFile);
        string path = Path.Combine(_folder, "inpainting.safetensors");
        SafetensorsWriter.Write(path, [.. Tensors(single, name => name.StartsWith(LdmKeyLayout.UNetPrefix, StringComparison.Ordinal) ? null : name), .. Tensors(renamed, name => name)]);
        return path;
    }

    private static float[] RunUNet(ComponentConfig config, ParameterSource parameters, int inChannels)
    {
        var graph = new GraphBuilder(parameters: parameters);
        UNet2DConditionModel.FromConfig(config).BuildGraph(graph);
        float[] sample = GraphRunner.Random(2 * inChannels * 8 * 8, seed: 11);
        float[] context = GraphRunner.Random(2 * 77 * 32, seed: 12);
        return GraphRunner.Run(graph.ToBytes(), Folder(parameters),
            ("sample", sample, [2, inChannels, 8, 8]), ("timestep", [500f, 500f], [2]), ("encoder_hidden_states", context, [2, 77, 32])).Values;
    }

    private static float[] RunVae(ComponentConfig config, ParameterSource parameters, bool decode, float[] input)
    {
        var graph = new GraphBuilder(parameters: parameters);
        AutoencoderKL vae = AutoencoderKL.FromConfig(config);
        if (decode)
        {
            Value latents = graph.Input("input", TensorElementType.Float, "batch", 4, "height", "width");
            graph.Output(vae.Decode(graph, latents), "output", "batch", 3, "image_height", "image_width");
            return GraphRunner.Run(graph.ToBytes(), Folder(parameters), ("input", input, [2, 4, 8, 8])).Values;
        }

        Value images = graph.Input("input", TensorElementType.Float, "batch", 3, "height", "width");
        graph.Output(vae.Encode(graph, images).Mean, "output", "batch", 4, "latent_height", "latent_width");
        return GraphRunner.Run(graph.ToBytes(), Folder(parameters), ("input", input, [1, 3, 64, 64])).Values;
    }

    private static float[] RunTextEncoder(ComponentConfig config, ParameterSource parameters, int[] ids)
    {
        var graph = new GraphBuilder(parameters: parameters);
        ClipTextModel.FromConfig(config).Build(graph);
        using InferenceSession session = GraphRunner.Session(graph.ToBytes(), Folder(parameters));
        using var input = OrtValue.CreateTensorValueFromMemory(ids, [1, ids.Length]);
        using var outputs = session.Run(new RunOptions(), [ClipTextModel.InputIdsName], [input], [ClipTextModel.LastHiddenStateName]);
        return outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }

    private static string Folder(ParameterSource parameters) => ((SafetensorsParameters)parameters).Folder;
}
