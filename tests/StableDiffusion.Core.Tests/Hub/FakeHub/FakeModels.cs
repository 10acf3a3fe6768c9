using System.Text;

namespace StableDiffusion.Core.Tests.Hub.FakeHub;

/// <summary>Repository contents for the tests: a small diffusers ONNX Stable Diffusion export with other variants beside it.</summary>
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
        [$"unet/{unetWeights}"] = Bytes(300_000, seed: 1),
        ["vae_decoder/model.onnx"] = OnnxBytes.ModelWithEmbeddedWeights(),
        ["vae_encoder/model.onnx"] = OnnxBytes.ModelWithEmbeddedWeights(),
        // Not needed by an ONNX pipeline: must not be downloaded.
        [".gitattributes"] = Encoding.UTF8.GetBytes("*.onnx filter=lfs\n"),
        ["README.md"] = Encoding.UTF8.GetBytes("# A model\n"),
        ["v1-5-pruned.ckpt"] = Bytes(50_000, seed: 2),
        ["unet/diffusion_pytorch_model.safetensors"] = Bytes(60_000, seed: 3),
        ["unet/fp16/model.onnx"] = OnnxBytes.ModelWithExternalData("weights.pb"),
        ["unet/fp16/weights.pb"] = Bytes(40_000, seed: 4),
        ["unet/unreferenced_weights.pb"] = Bytes(10_000, seed: 5),
        ["text_encoder/model.fp16.onnx"] = OnnxBytes.ModelWithEmbeddedWeights(),
        ["vae_decoder/diffusion_pytorch_model.bin"] = Bytes(20_000, seed: 6),
        ["image_encoder/config.json"] = Json("{}"),
    };

    /// <summary>Weights, graphs and checkpoints are LFS files (served from the CDN); configs are plain git files.</summary>
    public static bool IsLfs(string path) => !(path.EndsWith(".json", StringComparison.Ordinal) || path.EndsWith(".txt", StringComparison.Ordinal)
        || path.EndsWith(".md", StringComparison.Ordinal) || path == ".gitattributes");

    public static byte[] Bytes(int length, int seed)
    {
        byte[] bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static byte[] Json(string text) => Encoding.UTF8.GetBytes(text);
}
