namespace StableDiffusion.Cli;

/// <summary>
/// The SDK's messages name its API (<c>StableDiffusionPipelineOptions.EnableSafetyChecker = false</c>) because developers
/// read them; users of this tool read them too, and need its options instead. One table of the phrases that reach them,
/// each checked by a test that runs the tool into it.
/// </summary>
internal static class CliTerms
{
    private static readonly (string Api, string Tool)[] Phrases =
    [
        ("by setting StableDiffusionPipelineOptions.EnableSafetyChecker = false", "with --no-safety-checker"),
        ("(HF_HUB_OFFLINE or HubOptions.Offline)", "(--offline or HF_HUB_OFFLINE)"),
    ];

    /// <summary>An SDK message in the tool's terms.</summary>
    public static string Translate(string message)
    {
        foreach ((string api, string tool) in Phrases)
        {
            message = message.Replace(api, tool, StringComparison.Ordinal);
        }

        return message;
    }
}
