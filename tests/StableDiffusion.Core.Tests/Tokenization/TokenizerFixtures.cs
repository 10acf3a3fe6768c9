using StableDiffusion.Testing;
using StableDiffusion.Tokenization;

namespace StableDiffusion.Core.Tests.Tokenization;

/// <summary>The real CLIP ViT-L/14 tokenizer of the fixtures, loaded once per form (call <c>Fixtures.Require()</c> first).</summary>
internal static class TokenizerFixtures
{
    private static readonly Lazy<ClipTokenizer> LazyFromTokenizerJson = new(() => ClipTokenizer.FromFolder(TokenizerJsonFolder));
    private static readonly Lazy<ClipTokenizer> LazyFromVocabAndMerges = new(() => ClipTokenizer.FromFolder(VocabAndMergesFolder));

    /// <summary>tiny-sd-onnx/tokenizer: tokenizer.json beside vocab.json and merges.txt (tokenizer.json is read).</summary>
    public static string TokenizerJsonFolder => Path.Combine(Fixtures.TinyModel, "tokenizer");

    /// <summary>tiny-sd-onnx-variants/tokenizer: vocab.json and merges.txt only.</summary>
    public static string VocabAndMergesFolder => Path.Combine(Fixtures.TinyVariantsModel, "tokenizer");

    public static ClipTokenizer FromTokenizerJson => LazyFromTokenizerJson.Value;

    public static ClipTokenizer FromVocabAndMerges => LazyFromVocabAndMerges.Value;
}
