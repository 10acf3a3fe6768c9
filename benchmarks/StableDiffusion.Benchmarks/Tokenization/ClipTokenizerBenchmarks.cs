using BenchmarkDotNet.Attributes;
using StableDiffusion.Tokenization;

namespace StableDiffusion.Benchmarks.Tokenization;

/// <summary>
/// Tokenizing prompts with the fixture's CLIP tokenizer (SD_FIXTURES, default ../shared/fixtures). Target: a 77-token prompt
/// well under 100 µs. Results: docs/benchmarks/tokenizer.md.
/// </summary>
[MemoryDiagnoser]
public class ClipTokenizerBenchmarks
{
    // 75 content tokens: exactly fills the 77 ids with the start and end tokens.
    private const string SeventySevenTokenPrompt =
        "a highly detailed portrait of an astronaut riding a horse on mars, dramatic lighting, volumetric fog, " +
        "cinematic composition, sharp focus, intricate details, trending on artstation, by greg rutkowski and alphonse mucha, " +
        "octane render, 8k uhd, dslr, soft lighting, film grain, fujifilm xt3, masterpiece, best quality, ultra realistic, golden hour, glow";

    private const string ShortPrompt = "a photo of an astronaut riding a horse on mars";

    private ClipTokenizer _tokenizer = null!;
    private string _longPrompt = null!;
    private string _folder = null!;

    [GlobalSetup]
    public void Setup()
    {
        string fixtures = BenchmarkFixtures.Folder;
        _folder = Path.Combine(fixtures, "tiny-sd-onnx", "tokenizer");
        _tokenizer = ClipTokenizer.FromFolder(_folder);
        _longPrompt = string.Concat(Enumerable.Repeat("lorem ipsum dolor sit amet, consectetur adipiscing elit ", 200))[..10_000];
        int length = _tokenizer.Encode(SeventySevenTokenPrompt).UntruncatedIds.Length;
        if (length != 77)
        {
            throw new InvalidOperationException($"The 77-token prompt encodes to {length} ids.");
        }
    }

    [Benchmark(Baseline = true)]
    public ClipEncoding Encode77Tokens() => _tokenizer.Encode(SeventySevenTokenPrompt);

    [Benchmark]
    public ClipEncoding EncodeShortPrompt() => _tokenizer.Encode(ShortPrompt);

    [Benchmark]
    public ClipEncoding Encode10000Characters() => _tokenizer.Encode(_longPrompt);

    [Benchmark]
    public ClipTokenizer LoadFromFolder() => ClipTokenizer.FromFolder(_folder);
}
