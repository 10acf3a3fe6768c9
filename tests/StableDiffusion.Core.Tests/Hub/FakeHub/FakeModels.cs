using System.Text;
using StableDiffusion.Hub.Tests.FakeHub;

namespace StableDiffusion.Core.Tests.Hub.FakeHub;

/// <summary>
/// Repository contents for the tests: a small diffusers ONNX Stable Diffusion export with other variants beside it, and
/// the file list of the PyTorch repository of Stable Diffusion v1.5.
/// </summary>
public static class FakeModels
{
    public const string ModelIndex = """
        {
          "_class_name": "OnnxStableDiffusionPipeline",
          "_diffusers_version": "0.6.0",
          "feature_extractor": ["transformers", "CLIPImageProcessor"],
          "requires_safety_checker": true,
          "safety_checker": ["diffusers", "OnnxRuntimeModel"],
          "scheduler": ["diffusers", "PNDMScheduler"],
          "text_encoder": ["diffusers", "OnnxRuntimeModel"],
          "tokenizer": ["transformers", "CLIPTokenizer"],
          "unet": ["diffusers", "OnnxRuntimeModel"],
          "vae_decoder": ["diffusers", "OnnxRuntimeModel"],
          "vae_encoder": ["diffusers", "OnnxRuntimeModel"],
          "image_encoder": [null, null]
        }
        """;

    /// <summary>The <c>model_index.json</c> of <c>stable-diffusion-v1-5/stable-diffusion-v1-5</c>.</summary>
    public const string DiffusersModelIndex = """
        {
          "_class_name": "StableDiffusionPipeline",
          "_diffusers_version": "0.6.0",
          "feature_extractor": ["transformers", "CLIPImageProcessor"],
          "image_encoder": [null, null],
          "requires_safety_checker": true,
          "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
          "scheduler": ["diffusers", "PNDMScheduler"],
          "text_encoder": ["transformers", "CLIPTextModel"],
          "tokenizer": ["transformers", "CLIPTokenizer"],
          "unet": ["diffusers", "UNet2DConditionModel"],
          "vae": ["diffusers", "AutoencoderKL"]
        }
        """;

    /// <summary>
    /// Every file of <c>stable-diffusion-v1-5/stable-diffusion-v1-5</c> at <c>main</c>: per component the configs and the
    /// weights as safetensors and pickles, each in full and fp16 precision (the UNet also without EMA), the Flax weights,
    /// and beside the components the original single-file checkpoints and their inference config.
    /// </summary>
    public static readonly string[] StableDiffusion15Files =
    [
        ".gitattributes",
        "README.md",
        "feature_extractor/preprocessor_config.json",
        "model_index.json",
        "safety_checker/config.json",
        "safety_checker/flax_model.msgpack",
        "safety_checker/model.fp16.safetensors",
        "safety_checker/model.safetensors",
        "safety_checker/pytorch_model.bin",
        "safety_checker/pytorch_model.fp16.bin",
        "scheduler/scheduler_config.json",
        "text_encoder/config.json",
        "text_encoder/flax_model.msgpack",
        "text_encoder/model.fp16.safetensors",
        "text_encoder/model.safetensors",
        "text_encoder/pytorch_model.bin",
        "text_encoder/pytorch_model.fp16.bin",
        "tokenizer/merges.txt",
        "tokenizer/special_tokens_map.json",
        "tokenizer/tokenizer_config.json",
        "tokenizer/vocab.json",
        "unet/config.json",
        "unet/diffusion_flax_model.msgpack",
        "unet/diffusion_pytorch_model.bin",
        "unet/diffusion_pytorch_model.fp16.bin",
        "unet/diffusion_pytorch_model.fp16.safetensors",
        "unet/diffusion_pytorch_model.non_ema.bin",
        "unet/diffusion_pytorch_model.non_ema.safetensors",
        "unet/diffusion_pytorch_model.safetensors",
        "v1-5-pruned-emaonly.ckpt",
        "v1-5-pruned-emaonly.safetensors",
        "v1-5-pruned.ckpt",
        "v1-5-pruned.safetensors",
        "v1-inference.yaml",
        "vae/config.json",
        "vae/diffusion_flax_model.msgpack",
        "vae/diffusion_pytorch_model.bin",
        "vae/diffusion_pytorch_model.fp16.bin",
        "vae/diffusion_pytorch_model.fp16.safetensors",
        "vae/diffusion_pytorch_model.safetensors",
    ];

    /// <summary><see cref="StableDiffusion15Files"/> with contents: the real model index, small JSON configs, distinct random bytes for the rest.</summary>
    public static Dictionary<string, byte[]> StableDiffusion15Repository() => StableDiffusion15Files.Select((path, i) => (path, i)).ToDictionary(
        file => file.path,
        file => file.path == "model_index.json" ? Encoding.UTF8.GetBytes(DiffusersModelIndex)
            : file.path.EndsWith(".json", StringComparison.Ordinal) ? Json($$"""{"file": "{{file.path}}"}""")
            : FakeContent.Bytes(1_000 + file.i, seed: 100 + file.i),
        StringComparer.Ordinal);

    /// <summary>What <c>DownloadStableDiffusionAsync</c> must download from <see cref="StableDiffusionRepository"/>, and nothing more.</summary>
    public static readonly string[] StableDiffusionSelection =
    [
        "feature_extractor/preprocessor_config.json",
        "model_index.json",
        "safety_checker/model.onnx",
        "scheduler/scheduler_config.json",
        "text_encoder/model.onnx",
        "tokenizer/merges.txt",
        "tokenizer/special_tokens_map.json",
        "tokenizer/tokenizer_config.json",
        "tokenizer/vocab.json",
        "unet/model.onnx",
        "unet/weights.pb",
        "vae_decoder/model.onnx",
        "vae_encoder/model.onnx",
    ];

    /// <summary>The ONNX export plus what a real repository carries beside it: PyTorch weights, fp16 variants, a README.</summary>
    public static Dictionary<string, byte[]> StableDiffusionRepository(string unetWeights = "weights.pb") => new(StringComparer.Ordinal)
    {
        ["model_index.json"] = Encoding.UTF8.GetBytes(ModelIndex),
        ["feature_extractor/preprocessor_config.json"] = Json("""{"crop_size": 224, "do_normalize": true}"""),
        ["safety_checker/model.onnx"] = OnnxBytes.ModelWithEmbeddedWeights(),
        ["scheduler/scheduler_config.json"] = Json("""{"_class_name": "PNDMScheduler", "beta_end": 0.012}"""),
        ["text_encoder/model.onnx"] = OnnxBytes.ModelWithEmbeddedWeights(),
        ["tokenizer/merges.txt"] = Encoding.UTF8.GetBytes("#version: 0.2\ni n\n"),
        ["tokenizer/special_tokens_map.json"] = Json("""{"bos_token": "<|startoftext|>"}"""),
        ["tokenizer/tokenizer_config.json"] = Json("""{"model_max_length": 77}"""),
        ["tokenizer/vocab.json"] = Json("""{"!": 0, "in</w>": 1}"""),
        ["unet/model.onnx"] = OnnxBytes.ModelWithExternalData(unetWeights),
        [$"unet/{unetWeights}"] = FakeContent.Bytes(300_000, seed: 1),
        ["vae_decoder/model.onnx"] = OnnxBytes.ModelWithEmbeddedWeights(),
        ["vae_encoder/model.onnx"] = OnnxBytes.ModelWithEmbeddedWeights(),
        // Not needed by an ONNX pipeline: must not be downloaded.
        [".gitattributes"] = Encoding.UTF8.GetBytes("*.onnx filter=lfs\n"),
        ["README.md"] = Encoding.UTF8.GetBytes("# A model\n"),
        ["v1-5-pruned.ckpt"] = FakeContent.Bytes(50_000, seed: 2),
        ["unet/diffusion_pytorch_model.safetensors"] = FakeContent.Bytes(60_000, seed: 3),
        ["unet/fp16/model.onnx"] = OnnxBytes.ModelWithExternalData("weights.pb"),
        ["unet/fp16/weights.pb"] = FakeContent.Bytes(40_000, seed: 4),
        ["unet/unreferenced_weights.pb"] = FakeContent.Bytes(10_000, seed: 5),
        ["text_encoder/model.fp16.onnx"] = OnnxBytes.ModelWithEmbeddedWeights(),
        ["vae_decoder/diffusion_pytorch_model.bin"] = FakeContent.Bytes(20_000, seed: 6),
        ["image_encoder/config.json"] = Json("{}"),
    };


    private static byte[] Json(string text) => Encoding.UTF8.GetBytes(text);
}
