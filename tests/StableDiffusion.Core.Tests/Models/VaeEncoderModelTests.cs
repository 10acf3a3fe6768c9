using System.Numerics.Tensors;
using StableDiffusion.Models;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.Models;

public sealed class VaeEncoderModelTests
{
    [Fact]
    public void DiffusersExport_ExposesTheSameDistributionAsTheLatentParametersExport()
    {
        Fixtures.Require();
        using VaeEncoderModel diffusersExport = VaeEncoderModel.Load(Path.Combine(Fixtures.TinyModel, "vae_encoder", "model.onnx"));
        using VaeEncoderModel optimumExport = VaeEncoderModel.Load(Path.Combine(Fixtures.TinyVariantsModel, "vae_encoder", "model.onnx"));
        Tensor<float> image = TestImage();

        LatentDistribution a = diffusersExport.Encode(image);
        LatentDistribution b = optimumExport.Encode(image);

        Assert.Equal(VaeEncoderOutputKind.LatentDistribution, diffusersExport.OutputKind);
        Assert.Equal(VaeEncoderOutputKind.LatentParameters, optimumExport.OutputKind);
        Assert.Equal([1, 4, 8, 8], a.Mean.Lengths.ToArray());
        ArrayAssert.Close(b.Mean.AsSpan(), a.Mean.AsSpan(), 1e-5, "mean");
        ArrayAssert.Close(b.Std!.AsSpan(), a.Std!.AsSpan(), 1e-5, "std");
    }

    [Fact]
    public void DiffusersExport_IsDeterministic()
    {
        Fixtures.Require();
        using VaeEncoderModel encoder = VaeEncoderModel.Load(Path.Combine(Fixtures.TinyModel, "vae_encoder", "model.onnx"));
        Tensor<float> image = TestImage();

        float[] first = encoder.Encode(image).Mean.AsSpan().ToArray();
        float[] second = encoder.Encode(image).Mean.AsSpan().ToArray();

        Assert.Equal(first, second);
    }

    private static Tensor<float> TestImage()
    {
        var values = new float[3 * 64 * 64];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = MathF.Sin(i * 0.01f);
        }

        return Tensor.Create(values, [1, 3, 64, 64]);
    }
}
