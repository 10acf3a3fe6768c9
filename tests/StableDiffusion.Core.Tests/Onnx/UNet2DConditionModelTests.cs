using Microsoft.ML.OnnxRuntime;
using StableDiffusion.Core.Tests.Onnx.Support;
using StableDiffusion.Models;
using StableDiffusion.Onnx;
using StableDiffusion.Onnx.Builders;
using StableDiffusion.Testing;
using StableDiffusion.Weights;
using Xunit;

namespace StableDiffusion.Core.Tests.Onnx;

/// <summary>
/// The UNet built from a diffusers folder (config.json, and the safetensors file read in place) against diffusers' ONNX
/// export of the same weights, one denoising call at a time on the CPU.
/// </summary>
[Trait("Area", "WeightsLoading")]
public sealed class UNet2DConditionModelTests
{
    /// <summary>Batch, latent height and width, timestep, prompt length: square and not, integer and fractional timesteps, long prompts.</summary>
    public static TheoryData<int, int, int, float, int> Calls => new()
    {
        { 1, 8, 8, 999f, 77 },
        { 2, 6, 8, 500.5f, 77 },
        { 2, 8, 6, 0.25f, 154 },
        { 3, 8, 8, 1f, 231 },
        { 1, 4, 12, 12.375f, 1 },
    };

    [Theory]
    [MemberData(nameof(Calls))]
    public void OneCall_EqualsTheOnnxExportOfTheSameWeights(int batch, int height, int width, float timestep, int sequence)
    {
        Fixtures.Require();
        using UNetUnderTest unet = UNetUnderTest.Build("tiny-sd/unet", GraphFlavor.Plain);
        (float[] sample, float[] context) = Inputs(unet.Model, batch, height, width, sequence, seed: batch + height + sequence);
        float[] timesteps = [.. Enumerable.Repeat(timestep, batch)];

        float[] built = unet.Run(sample, timesteps, context, batch, height, width, sequence);
        float[] exported = RunExport("tiny-sd-onnx/unet/model.onnx", sample, timesteps, null, context, batch, unet.Model, height, width, sequence);

        ArrayAssert.CloseRelative(exported, built, 1e-5, $"UNet output, batch {batch}, {height}x{width}, t={timestep}, {sequence} tokens");
    }

    [Theory]
    [InlineData(1, 981)]
    [InlineData(2, 1)]
    [InlineData(2, 500)]
    public void InpaintingUNet_NineChannels_EqualsItsExportAtIntegerTimesteps(int batch, int timestep)
    {
        Fixtures.Require();
        using UNetUnderTest unet = UNetUnderTest.Build("tiny-sd-inpaint-unet", GraphFlavor.Plain);
        Assert.Equal(9, unet.Model.InChannels);
        (float[] sample, float[] context) = Inputs(unet.Model, batch, 8, 8, 77, seed: timestep);

        float[] built = unet.Run(sample, [.. Enumerable.Repeat((float)timestep, batch)], context, batch, 8, 8, 77);
        float[] exported = RunExport("tiny-sd-inpaint-onnx/unet/model.onnx", sample, null, [.. Enumerable.Repeat((long)timestep, batch)], context, batch, unet.Model, 8, 8, 77);

        ArrayAssert.CloseRelative(exported, built, 1e-5, $"inpainting UNet output, batch {batch}, t={timestep}");
    }

    [Fact]
    public void MultiHeadAttentionFlavor_GivesThePlainGraphsOutput()
    {
        Fixtures.Require();
        using UNetUnderTest plain = UNetUnderTest.Build("tiny-sd/unet", GraphFlavor.Plain);
        using UNetUnderTest fused = UNetUnderTest.Build("tiny-sd/unet", GraphFlavor.PlainWithMultiHeadAttention);
        (float[] sample, float[] context) = Inputs(plain.Model, 2, 6, 8, 77, seed: 5);
        float[] timesteps = [801f, 801f];

        float[] expected = plain.Run(sample, timesteps, context, 2, 6, 8, 77);
        float[] actual = fused.Run(sample, timesteps, context, 2, 6, 8, 77);

        Assert.Contains("MultiHeadAttention", fused.OperatorTypes);
        Assert.DoesNotContain("Softmax", fused.OperatorTypes);
        ArrayAssert.CloseRelative(expected, actual, 1e-5, "MultiHeadAttention vs MatMul-Softmax attention");
    }

    [Fact]
    public void OneTimestep_BroadcastsOverTheBatch()
    {
        Fixtures.Require();
        using UNetUnderTest unet = UNetUnderTest.Build("tiny-sd/unet", GraphFlavor.Plain);
        (float[] sample, float[] context) = Inputs(unet.Model, 2, 8, 8, 77, seed: 9);

        float[] one = unet.Run(sample, [321.5f], context, 2, 8, 8, 77, timestepShape: [1]);
        float[] each = unet.Run(sample, [321.5f, 321.5f], context, 2, 8, 8, 77);

        ArrayAssert.Close(each, one, 0, "timestep [1] vs [batch]");
    }

    [Theory]
    [InlineData(5, 7)]
    [InlineData(3, 3)]
    public void OddLatentSizes_UpsampleToTheSkipSizes(int height, int width)
    {
        // The export upsamples by 2 and cannot run these (its skip concatenation fails); diffusers passes upsample_size.
        Fixtures.Require();
        using UNetUnderTest unet = UNetUnderTest.Build("tiny-sd/unet", GraphFlavor.Plain);
        (float[] sample, float[] context) = Inputs(unet.Model, 1, height, width, 77, seed: 3);

        float[] output = unet.Run(sample, [10f], context, 1, height, width, 77);

        Assert.Equal(4 * height * width, output.Length);
        Assert.All(output, v => Assert.True(float.IsFinite(v)));
    }

    [Theory]
    [InlineData("\"addition_embed_type\": null", "\"addition_embed_type\": \"text_time\"", "\"addition_embed_type\": \"text_time\"", "null (the field absent)")]
    [InlineData("\"class_embed_type\": null", "\"class_embed_type\": \"projection\"", "\"class_embed_type\": \"projection\"", "null (the field absent)")]
    [InlineData("\"num_attention_heads\": null", "\"num_attention_heads\": 8", "\"num_attention_heads\": 8", "null (the field absent)")]
    [InlineData("\"time_cond_proj_dim\": null", "\"time_cond_proj_dim\": 256", "\"time_cond_proj_dim\": 256", "null (the field absent)")]
    [InlineData("\"dual_cross_attention\": false", "\"dual_cross_attention\": true", "\"dual_cross_attention\": true", "false")]
    [InlineData("\"resnet_time_scale_shift\": \"default\"", "\"resnet_time_scale_shift\": \"scale_shift\"", "\"resnet_time_scale_shift\": \"scale_shift\"", "one of \"default\"")]
    [InlineData("\"mid_block_type\": \"UNetMidBlock2DCrossAttn\"", "\"mid_block_type\": \"UNetMidBlock2DSimpleCrossAttn\"", "\"mid_block_type\": \"UNetMidBlock2DSimpleCrossAttn\"", "one of \"UNetMidBlock2DCrossAttn\", \"UNetMidBlock2D\"")]
    [InlineData("\"attention_head_dim\": 8", "\"attention_head_dim\": [8, 8, 8]", "\"attention_head_dim\": [8, 8, 8]", "a positive integer or a list of 2 (one per block)")]
    public void FromConfig_WithAFieldItCannotBuild_ThrowsNamingTheFieldAndValue(string original, string replacement, string named, string supported)
    {
        Fixtures.Require();
        string folder = Directory.CreateTempSubdirectory("sd-unet-config-").FullName;
        try
        {
            string text = File.ReadAllText(Fixtures.PathOf("tiny-sd/unet/config.json"));
            Assert.Contains(original, text, StringComparison.Ordinal);
            string path = Path.Combine(folder, "config.json");
            File.WriteAllText(path, text.Replace(original, replacement, StringComparison.Ordinal));

            var ex = Assert.Throws<ModelLoadException>(() => UNet2DConditionModel.FromConfig(ComponentConfig.Load(path)));

            Assert.StartsWith($"The configuration '{path}' has {named}, ", ex.Message, StringComparison.Ordinal);
            Assert.EndsWith($"which this SDK cannot build; it supports {supported}.", ex.Message, StringComparison.Ordinal);
            Assert.Equal(path, ex.Path);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void FixedDimensions_LeaveNoShapeArithmeticAfterOnnxRuntimesOptimizations()
    {
        // What static shapes and CUDA graphs need: with the named dimensions fixed by free dimension overrides (as
        // StaticShape sets them), ONNX Runtime folds every Shape, Slice and Concat of the graph's shape arithmetic.
        Fixtures.Require();
        (ModelProto model, string folder) = UNetUnderTest.BuildGraph("tiny-sd/unet", GraphFlavor.Plain, Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float);
        string optimized = Path.Combine(Path.GetTempPath(), $"sd-unet-static-{Guid.NewGuid():N}.onnx");
        try
        {
            using (var options = new SessionOptions { OptimizedModelFilePath = optimized })
            {
                options.AddSessionConfigEntry("session.model_external_initializers_file_folder_path", folder);
                foreach ((string name, long size) in new[] { ("batch", 2L), ("height", 6L), ("width", 8L), ("sequence", 77L) })
                {
                    options.AddFreeDimensionOverrideByName(name, size);
                }

                using var session = new InferenceSession(Google.Protobuf.MessageExtensions.ToByteArray(model), options);
            }

            ModelProto folded = ModelProto.Parser.ParseFrom(File.ReadAllBytes(optimized));
            Assert.Contains(model.Graph.Node, n => n.OpType == "Shape");
            Assert.DoesNotContain(folded.Graph.Node, n => n.OpType == "Shape");
        }
        finally
        {
            File.Delete(optimized);
        }
    }

    [Fact]
    public void TimestepFrequencies_AreTheFloat32ValuesPyTorchComputes()
    {
        // The frequencies the export holds as a constant (computed by torch): float32 step by step, exp correctly rounded.
        float[] torch = [1f, 0.5623413324356079f, 0.3162277638912201f, 0.17782793939113617f, 0.09999999403953552f, 0.056234125047922134f,
            0.03162277489900589f, 0.017782794311642647f, 0.009999999776482582f, 0.0056234123185276985f, 0.0031622766982764006f,
            0.0017782794311642647f, 0.0009999999310821295f, 0.0005623411852866411f, 0.00031622781534679234f, 0.00017782794020604342f];

        float[] ours = new TimestepProjection(32, FlipSinToCos: true, FreqShift: 0f, EmbeddingDim: 128).Frequencies();

        Assert.Equal(torch, ours);
    }

    internal static (float[] Sample, float[] Context) Inputs(UNet2DConditionModel model, int batch, int height, int width, int sequence, int seed) =>
        (GraphRunner.Random(batch * model.InChannels * height * width, seed), GraphRunner.Random(batch * sequence * model.CrossAttentionDim[0], seed + 1000));

    private static float[] RunExport(string export, float[] sample, float[]? timesteps, long[]? integerTimesteps, float[] context, int batch, UNet2DConditionModel model, int height, int width, int sequence)
    {
        using var session = new InferenceSession(Fixtures.PathOf(export));
        using OrtValue sampleValue = OrtValue.CreateTensorValueFromMemory(sample, [batch, model.InChannels, height, width]);
        using OrtValue timestepValue = timesteps is not null
            ? OrtValue.CreateTensorValueFromMemory(timesteps, [batch])
            : OrtValue.CreateTensorValueFromMemory(integerTimesteps!, [batch]);
        using OrtValue contextValue = OrtValue.CreateTensorValueFromMemory(context, [batch, sequence, model.CrossAttentionDim[0]]);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, ["sample", "timestep", "encoder_hidden_states"], [sampleValue, timestepValue, contextValue], ["out_sample"]);
        return outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }
}
