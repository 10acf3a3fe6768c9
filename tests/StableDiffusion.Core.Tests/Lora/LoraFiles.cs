using StableDiffusion.Testing;

namespace StableDiffusion.Core.Tests.Lora;

/// <summary>The LoRA files committed with the repository's reference (<c>tests/reference/weights/lora</c>, made with PEFT by eng/reference/make_test_weights.py).</summary>
internal static class LoraFiles
{
    /// <summary>The path of one of them.</summary>
    public static string Path(string name) => System.IO.Path.Combine(Fixtures.RepositoryRoot, "tests", "reference", "weights", "lora", name);
}
