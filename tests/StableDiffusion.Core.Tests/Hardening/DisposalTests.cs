using System.Numerics.Tensors;
using StableDiffusion.Core.Tests.EndToEnd.Support;
using StableDiffusion.Models;
using StableDiffusion.Pipelines;
using StableDiffusion.Safety;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.Hardening;

/// <summary>
/// Disposing releases every ONNX Runtime session (each model then refuses work with <see cref="ObjectDisposedException"/>),
/// waits for generations in flight, and every public method of a disposed pipeline throws <see cref="ObjectDisposedException"/>.
/// </summary>
[Trait("Category", "Hardening")]
public sealed class DisposalTests(TinyPipelines pipelines)
{
    private static readonly TextToImageRequest Request = new("a lighthouse") { Seed = 2, NumInferenceSteps = 4, Height = 64, Width = 64 };

    [Fact]
    public async Task Disposing_ReleasesEverySessionItCreated()
    {
        Fixtures.Require();
        CancellationToken ct = TestContext.Current.CancellationToken;
        var created = new List<string>();
        var options = new StableDiffusionPipelineOptions { ConfigureSessionOptions = (component, _) => created.Add(component) };
        var text = await StableDiffusionPipeline.FromPretrainedAsync(Fixtures.TinyModel, options, ct);
        var edit = StableDiffusionImg2ImgPipeline.FromPipe(text);
        using (await edit.GenerateAsync(new Img2ImgRequest("a lighthouse", TestImages.Picture()) { Seed = 1, NumInferenceSteps = 2 }, ct))
        {
        }

        OnnxModel[] models = [text.TextEncoder, text.UNet, text.VaeDecoder, edit.Components.VaeEncoder];
        SafetyChecker checker = text.SafetyChecker!;
        text.Dispose();
        edit.Dispose();

        // diffusers' VAE encoder export is opened twice (once to read its outputs, once with its distribution exposed); the
        // UNet loads beside the others, so the order of the first four varies.
        Assert.Equal(["safety_checker", "text_encoder", "unet", "vae_decoder", "vae_encoder"], created.Distinct().Order(StringComparer.Ordinal));
        Assert.Throws<ObjectDisposedException>(() => text.TextEncoder.Encode(new int[77], 1));
        Assert.Throws<ObjectDisposedException>(() => text.UNet.Predict(
            Tensor.CreateFromShape<float>([1, 4, 8, 8]), 1f, Tensor.CreateFromShape<float>([1, 77, 32]), Tensor.CreateFromShape<float>([1, 4, 8, 8])));
        Assert.Throws<ObjectDisposedException>(() => text.VaeDecoder.Decode(Tensor.CreateFromShape<float>([1, 4, 8, 8])));
        Assert.Throws<ObjectDisposedException>(() => edit.Components.VaeEncoder.Encode(Tensor.CreateFromShape<float>([1, 3, 64, 64])));
        Assert.Throws<ObjectDisposedException>(() => checker.Check(Tensor.CreateFromShape<float>([1, 64, 64, 3]), ct));
        Assert.Equal(4, models.Distinct().Count());
    }

    [Fact]
    public async Task EveryPublicMethodOfADisposedPipeline_ThrowsObjectDisposed()
    {
        Fixtures.Require();
        CancellationToken ct = TestContext.Current.CancellationToken;
        var text = await StableDiffusionPipeline.FromPretrainedAsync(Fixtures.TinyModel, cancellationToken: ct);
        var edit = StableDiffusionImg2ImgPipeline.FromPipe(text);
        var inpaint = StableDiffusionInpaintPipeline.FromPipe(text);
        var picture = TestImages.Picture();
        var mask = TestImages.Mask();
        var editRequest = new Img2ImgRequest("a lighthouse", picture) { NumInferenceSteps = 2 };
        var inpaintRequest = new InpaintRequest("a lighthouse", picture, mask) { NumInferenceSteps = 2, Height = 64, Width = 64 };

        // The text-to-image pipeline goes first while the others still hold the shared sessions: it must refuse work anyway.
        foreach (DiffusionPipeline disposed in new DiffusionPipeline[] { text, edit, inpaint })
        {
            disposed.Dispose();
            disposed.Dispose();
            Assert.Throws<ObjectDisposedException>(() => StableDiffusionPipeline.FromPipe(disposed));
            Assert.Throws<ObjectDisposedException>(() => StableDiffusionImg2ImgPipeline.FromPipe(disposed));
            Assert.Throws<ObjectDisposedException>(() => StableDiffusionInpaintPipeline.FromPipe(disposed));
        }

        Assert.Throws<ObjectDisposedException>(() => text.Generate(Request, cancellationToken: ct));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => text.GenerateAsync(Request, ct));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => text.GenerateAsync(Request, new Progress<GenerationProgress>(), ct));
        Assert.Throws<ObjectDisposedException>(() => edit.Generate(editRequest, cancellationToken: ct));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => edit.GenerateAsync(editRequest, ct));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => edit.GenerateAsync(editRequest, new Progress<GenerationProgress>(), ct));
        Assert.Throws<ObjectDisposedException>(() => inpaint.Generate(inpaintRequest, cancellationToken: ct));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => inpaint.GenerateAsync(inpaintRequest, ct));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => inpaint.GenerateAsync(inpaintRequest, new Progress<GenerationProgress>(), ct));
    }

    [Fact]
    public async Task DisposingDuringAGeneration_LetsItFinishCorrectly_ThenReleasesTheSessions()
    {
        Fixtures.Require();
        CancellationToken ct = TestContext.Current.CancellationToken;
        using GenerationResult expected = await pipelines.TextToImage.GenerateAsync(Request, ct);
        var pipeline = await StableDiffusionPipeline.FromPretrainedAsync(Fixtures.TinyModel, cancellationToken: ct);
        using var paused = new SemaphoreSlim(0);
        using var resume = new SemaphoreSlim(0);
        Task<GenerationResult> running = pipeline.GenerateAsync(Request with
        {
            OnStepEnd = step =>
            {
                if (step.StepIndex == 1)
                {
                    paused.Release();
                    Assert.True(resume.Wait(TimeSpan.FromMinutes(1), ct), "The test never resumed the generation.");
                }
            },
        }, ct);
        Assert.True(await paused.WaitAsync(TimeSpan.FromMinutes(1), ct), "The generation never reached step 1.");

        pipeline.Dispose();

        Assert.Throws<ObjectDisposedException>(() => pipeline.Generate(Request, cancellationToken: ct));
        // The generation in flight still holds the sessions.
        Assert.Equal([1, 3, 64, 64], pipeline.VaeDecoder.Decode(Tensor.CreateFromShape<float>([1, 4, 8, 8])).Lengths.ToArray());
        resume.Release();
        using GenerationResult result = await running.WaitAsync(TimeSpan.FromMinutes(1), ct);
        ResultAssert.Identical(expected, result, "the generation that outlived Dispose");
        Assert.Throws<ObjectDisposedException>(() => pipeline.VaeDecoder.Decode(Tensor.CreateFromShape<float>([1, 4, 8, 8])));
    }
}
