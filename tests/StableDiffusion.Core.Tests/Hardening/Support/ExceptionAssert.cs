using Xunit;

namespace StableDiffusion.Core.Tests.Hardening.Support;

/// <summary>Checks that an error is of the exact expected type and that its message names the problem.</summary>
internal static class ExceptionAssert
{
    /// <summary>Asserts the exact type and that the message contains every fragment (a '/' in a fragment also matches the platform's separator).</summary>
    public static void Specific(Exception? error, Type expected, IEnumerable<string> fragments)
    {
        Assert.True(error is not null, $"Expected {expected.Name}, but nothing was thrown.");
        Assert.True(error.GetType() == expected, $"Expected {expected.Name}, got {error.GetType().FullName}: {error.Message}\n{error.StackTrace}");
        TestContext.Current.TestOutputHelper?.WriteLine($"{error.GetType().Name}: {error.Message}");
        foreach (string fragment in fragments)
        {
            Assert.True(
                error.Message.Contains(fragment, StringComparison.Ordinal) || error.Message.Contains(fragment.Replace('/', Path.DirectorySeparatorChar), StringComparison.Ordinal),
                $"The message does not name \"{fragment}\": {error.Message}");
        }
    }
}
