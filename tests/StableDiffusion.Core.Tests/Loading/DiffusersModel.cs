using StableDiffusion.Models;
using StableDiffusion.Pipelines;
using StableDiffusion.Testing;

namespace StableDiffusion.Core.Tests.Loading;

/// <summary>
/// The diffusers-layout equivalent of an ONNX fixture the reference names: <c>tiny-sd</c> for <c>tiny-sd-onnx</c> and
/// <c>tiny-sd-onnx-variants</c> (the same weights), and <c>tiny-sd</c> with the 9-channel <c>tiny-sd-inpaint-unet</c> given in
/// place of its UNet for <c>tiny-sd-inpaint-onnx</c>, as diffusers' <c>unet=</c> argument does.
/// </summary>
internal sealed class DiffusersModel : IDisposable
{
    private DiffusersModel(string path, UNetModel? unet)
    {
        Path = path;
        UNet = unet;
        Options = unet is null ? new() : new() { Components = new Dictionary<string, OnnxModel> { [ModelComponents.UNet] = unet } };
    }

    /// <summary>The diffusers folder.</summary>
    public string Path { get; }

    /// <summary>The options that load it as the ONNX fixture is (the UNet override, if any).</summary>
    public StableDiffusionPipelineOptions Options { get; }

    /// <summary>The UNet given in place of the folder's, if any.</summary>
    public UNetModel? UNet { get; }

    /// <summary>The equivalent of the ONNX fixture at <paramref name="onnxModel"/> (a resolved path).</summary>
    public static DiffusersModel For(string onnxModel)
    {
        string parent = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(onnxModel).TrimEnd(System.IO.Path.DirectorySeparatorChar))!;
        string diffusers = System.IO.Path.Combine(parent, "tiny-sd");
        return System.IO.Path.GetFileName(onnxModel.TrimEnd(System.IO.Path.DirectorySeparatorChar)) switch
        {
            "tiny-sd-onnx" or "tiny-sd-onnx-variants" => new DiffusersModel(diffusers, null),
            "tiny-sd-inpaint-onnx" => new DiffusersModel(diffusers, UNetModel.FromPretrained(System.IO.Path.Combine(parent, "tiny-sd-inpaint-unet"))),
            string other => throw new InvalidOperationException($"The reference names the model '{other}', which has no diffusers-layout equivalent among the fixtures."),
        };
    }

    public void Dispose() => UNet?.Dispose();
}
