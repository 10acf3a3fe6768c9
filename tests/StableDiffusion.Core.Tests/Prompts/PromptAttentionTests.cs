using StableDiffusion.Prompts;
using Xunit;

namespace StableDiffusion.Core.Tests.Prompts;

/// <summary>
/// The web UI attention syntax, parsed as diffusers' long-prompt-weighting community pipeline parses it: the expected
/// pieces and weights are what its <c>parse_prompt_attention</c> returns (its docstring's examples, and tricky inputs
/// worked through its code), compared exactly: the weights are the same products of doubles.
/// </summary>
[Trait("Area", "PromptWeighting")]
public sealed class PromptAttentionTests
{
    public static TheoryData<string, (string Text, double Weight)[]> Cases => new()
    {
        { "normal text", [("normal text", 1.0)] },
        { "an (important) word", [("an ", 1.0), ("important", 1.1), (" word", 1.0)] },
        { "(unbalanced", [("unbalanced", 1.1)] },
        { @"\(literal\]", [("(literal]", 1.0)] },
        { "(unnecessary)(parens)", [("unnecessaryparens", 1.1)] },
        {
            "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
            [("a ", 1.0), ("house", 1.5730000000000004), (" ", 1.1), ("on", 1.0), (" a ", 1.1), ("hill", 0.55), (", sun, ", 1.1), ("sky", 1.4641000000000006), (".", 1.1)]
        },
        { "", [("", 1.0)] },
        { "(a:1.0)", [("a", 1.0)] },
        { "[[less]]", [("less", 0.8264462809917354)] },
        { "[unbalanced", [("unbalanced", 0.9090909090909091)] },
        // A weight outside round brackets, and closers without openers, are text.
        { "a:1.5) b] c)", [("a:1.5) b] c)", 1.0)] },
        { "time: 10:30", [("time: 10:30", 1.0)] },
        // A lone backslash disappears; an escaped one stays.
        { @"a\b \\ c", [(@"ab \ c", 1.0)] },
        // Escaped brackets inside brackets take the brackets' weight.
        { @"(\(x\))", [("(x)", 1.1)] },
        { "(a:-0.5) (b:+2) (c:.5)", [("a", -0.5), (" ", 1.0), ("b", 2.0), (" ", 1.0), ("c", 0.5)] },
        // The weight applies to everything since its opening bracket, nested brackets included.
        { "((nested (weights:0.8) here))", [("nested ", 1.2100000000000002), ("weights", 0.9680000000000002), (" here", 1.2100000000000002)] },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Parse_GivesTheCommunityPipelinesPiecesAndWeights(string prompt, (string Text, double Weight)[] expected)
    {
        IReadOnlyList<PromptSegment> parsed = PromptAttention.Parse(prompt);

        Assert.Equal(expected, parsed.Select(s => (s.Text, s.Weight)).ToArray());
        Assert.DoesNotContain(parsed, s => s.IsBreak);
    }

    [Theory]
    [InlineData("a BREAK b", new[] { "a", "|", "b" })]
    [InlineData("BREAK b", new[] { "", "|", "b" })]
    [InlineData("a, BREAK", new[] { "a,", "|" })]
    [InlineData("(a BREAK b:1.2)", new[] { "a", "|", "b" })]
    // Only the upper-case word on its own is a break.
    [InlineData("a break b BREAKS aBREAK", new[] { "a break b BREAKS aBREAK" })]
    public void Parse_SplitsAtBreak(string prompt, string[] expected)
    {
        IReadOnlyList<PromptSegment> parsed = PromptAttention.Parse(prompt);

        Assert.Equal(expected, parsed.Select(s => s.IsBreak ? "|" : s.Text).ToArray());
    }

    [Fact]
    public void Parse_BreakInsideBrackets_KeepsTheWeightOnBothSides()
    {
        IReadOnlyList<PromptSegment> parsed = PromptAttention.Parse("(a BREAK b:1.2)");

        Assert.Equal([1.2, 1.2], parsed.Where(s => !s.IsBreak).Select(s => s.Weight));
    }

    [Theory]
    [InlineData("(a:1.2.3)")]
    [InlineData("(a:.)")]
    public void Parse_AWeightThatIsNotANumber_Throws(string prompt)
    {
        var ex = Assert.Throws<ArgumentException>(() => PromptAttention.Parse(prompt));

        Assert.Contains("is not a number", ex.Message, StringComparison.Ordinal);
    }
}
