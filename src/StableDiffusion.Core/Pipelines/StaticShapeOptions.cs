namespace StableDiffusion.Pipelines;

/// <summary>
/// One image size and batch the pipeline is specialised for: ONNX Runtime then plans memory for fixed shapes, keeps all
/// shape arithmetic on the GPU, and can capture the UNet in a CUDA graph (set the CUDA provider option
/// <c>enable_cuda_graph</c> to <c>1</c> for the UNet). Requests of another shape are rejected with a clear error.
/// </summary>
public sealed record StaticShapeOptions
{
    /// <summary>The image height in pixels (default 512).</summary>
    public int Height { get; init; } = 512;

    /// <summary>The image width in pixels (default 512).</summary>
    public int Width { get; init; } = 512;

    /// <summary>Images per call: prompts times images per prompt (default 1).</summary>
    public int ImagesPerCall { get; init; } = 1;

    /// <summary>Whether calls use classifier-free guidance (guidance scale above 1), which doubles the UNet batch (default true).</summary>
    public bool ClassifierFreeGuidance { get; init; } = true;

    /// <summary>The fixed symbolic dimensions of a diffusers ONNX export's component graphs, for this shape; the VAE decoder
    /// takes one image at a time when <paramref name="vaeSlicing"/> is on, the safety checker always.</summary>
    internal IReadOnlyDictionary<string, long> DimensionsFor(string component, int vaeScaleFactor, int unetChannels, bool vaeSlicing) => component switch
    {
        Models.ModelComponents.UNet => new Dictionary<string, long>
        {
            ["batch"] = (ClassifierFreeGuidance ? 2 : 1) * ImagesPerCall,
            ["channels"] = unetChannels,
            ["height"] = Height / vaeScaleFactor,
            ["width"] = Width / vaeScaleFactor,
            ["sequence"] = 77,
        },
        Models.ModelComponents.VaeDecoder => new Dictionary<string, long>
        {
            ["batch"] = vaeSlicing ? 1 : ImagesPerCall, ["channels"] = 4, ["height"] = Height / vaeScaleFactor, ["width"] = Width / vaeScaleFactor,
        },
        Models.ModelComponents.VaeEncoder => new Dictionary<string, long>
        {
            ["batch"] = 1, ["channels"] = 3, ["height"] = Height, ["width"] = Width,
        },

        // The checker runs image by image; an export's two inputs share the names height and width for different sizes (224
        // and the image's), so only the batch and the three channels are fixed: that makes a built graph's input static.
        Models.ModelComponents.SafetyChecker => new Dictionary<string, long> { ["batch"] = 1, ["channels"] = 3 },
        _ => new Dictionary<string, long>(),
    };
}
