using StableDiffusion.Core.Tests.EndToEnd.Support;
using StableDiffusion.ExecutionProviders;
using StableDiffusion.Pipelines;
using StableDiffusion.Testing;
using Xunit;

[assembly: AssemblyFixture(typeof(TinyPipelines))]

namespace StableDiffusion.Core.Tests.EndToEnd.Support;

/// <summary>
/// Pipelines on the tiny fixture models, each loaded once for the whole test run and shared (a pipeline is safe to call
/// from several threads). Tests must not change them: one that swaps a scheduler makes its own with <c>FromPipe</c>.
/// </summary>
public sealed class TinyPipelines : IDisposable
{
    private readonly Lazy<StableDiffusionPipeline> _textToImage = new(() => StableDiffusionPipeline.FromPretrained(Fixtures.TinyModel));
    private readonly Lazy<StableDiffusionPipeline> _textToImageAsExported = new(() => StableDiffusionPipeline.FromPretrained(
        Fixtures.TinyModel, new StableDiffusionPipelineOptions { Session = new SessionSettings { FuseAttention = false } }));
    private readonly Lazy<StableDiffusionImg2ImgPipeline> _imageToImage;
    private readonly Lazy<StableDiffusionImg2ImgPipeline> _variantsImageToImage = new(() => StableDiffusionImg2ImgPipeline.FromPretrained(Fixtures.TinyVariantsModel));
    private readonly Lazy<StableDiffusionInpaintPipeline> _inpaint = new(() => StableDiffusionInpaintPipeline.FromPretrained(Fixtures.TinyInpaintModel));
    private readonly Lazy<StableDiffusionInpaintPipeline> _latentInpaint;

    public TinyPipelines()
    {
        _imageToImage = new(() => StableDiffusionImg2ImgPipeline.FromPipe(_textToImage.Value));
        _latentInpaint = new(() => StableDiffusionInpaintPipeline.FromPipe(_variantsImageToImage.Value));
    }

    /// <summary>Text-to-image on tiny-sd-onnx (diffusers' export: float32 timestep, sampling VAE encoder), safety checker on.</summary>
    public StableDiffusionPipeline TextToImage => Get(_textToImage);

    /// <summary>
    /// Text-to-image on tiny-sd-onnx with its attention as exported (<c>FuseAttention = false</c>): MatMul and Softmax over
    /// the whole [batch, heads, queries, keys] probability matrix, which a large enough image cannot allocate.
    /// </summary>
    public StableDiffusionPipeline TextToImageAsExported => Get(_textToImageAsExported);

    /// <summary>Image-to-image sharing <see cref="TextToImage"/>'s sessions.</summary>
    public StableDiffusionImg2ImgPipeline ImageToImage => Get(_imageToImage);

    /// <summary>Image-to-image on tiny-sd-onnx-variants (same weights; int64 ids and timestep, external data, latent_parameters encoder).</summary>
    public StableDiffusionImg2ImgPipeline VariantsImageToImage => Get(_variantsImageToImage);

    /// <summary>Inpainting with the 9-channel inpainting UNet.</summary>
    public StableDiffusionInpaintPipeline Inpaint => Get(_inpaint);

    /// <summary>Inpainting with an ordinary 4-channel UNet (tiny-sd-onnx-variants), blending the kept region back at every step.</summary>
    public StableDiffusionInpaintPipeline LatentInpaint => Get(_latentInpaint);

    public void Dispose()
    {
        DisposeIfCreated(_latentInpaint);
        DisposeIfCreated(_imageToImage);
        DisposeIfCreated(_inpaint);
        DisposeIfCreated(_variantsImageToImage);
        DisposeIfCreated(_textToImage);
        DisposeIfCreated(_textToImageAsExported);
    }

    private static T Get<T>(Lazy<T> pipeline)
    {
        Fixtures.Require();
        return pipeline.Value;
    }

    private static void DisposeIfCreated<T>(Lazy<T> pipeline)
        where T : IDisposable
    {
        if (pipeline.IsValueCreated)
        {
            pipeline.Value.Dispose();
        }
    }
}
