using System.Net;

namespace StableDiffusion.Hub;

/// <summary>A Hugging Face Hub download failed; the derived types say why and what to do.</summary>
public class HubException : StableDiffusionException
{
    /// <summary>Creates the exception.</summary>
    public HubException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What went wrong and what to do.</param>
    public HubException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    /// <param name="message">What went wrong and what to do.</param>
    /// <param name="innerException">The cause.</param>
    public HubException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The repository concerned (<c>org/name</c>), when known.</summary>
    public string? RepoId { get; init; }

    /// <summary>The HTTP status the Hub answered with, when the failure came from an answer.</summary>
    public HttpStatusCode? StatusCode { get; init; }
}

/// <summary>
/// The Hub refused access (401 or 403): the repository is private or gated and no token, or a token without access, was sent.
/// Set <c>HF_TOKEN</c> (or log in with <c>hf auth login</c>, which writes the token file) and, for a gated model,
/// accept its conditions on the model page.
/// </summary>
public sealed class HubAuthenticationException : HubException
{
    /// <summary>Creates the exception.</summary>
    public HubAuthenticationException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What went wrong and what to do.</param>
    public HubAuthenticationException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    /// <param name="message">What went wrong and what to do.</param>
    /// <param name="innerException">The cause.</param>
    public HubAuthenticationException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Whether the repository is gated (its conditions must be accepted on the Hub).</summary>
    public bool IsGated { get; init; }
}

/// <summary>What a <see cref="HubNotFoundException"/> could not find.</summary>
public enum HubMissingItem
{
    /// <summary>The repository does not exist (or is private and no token was sent).</summary>
    Repository,

    /// <summary>The repository exists but the branch, tag or commit does not.</summary>
    Revision,

    /// <summary>The revision exists but the file does not.</summary>
    File,
}

/// <summary>The repository, revision or file does not exist on the Hub (404); <see cref="Missing"/> says which.</summary>
public sealed class HubNotFoundException : HubException
{
    /// <summary>Creates the exception.</summary>
    public HubNotFoundException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What went wrong and what to do.</param>
    public HubNotFoundException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    /// <param name="message">What went wrong and what to do.</param>
    /// <param name="innerException">The cause.</param>
    public HubNotFoundException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Whether the repository, the revision or a file is missing.</summary>
    public HubMissingItem Missing { get; init; }

    /// <summary>The revision asked for, when known.</summary>
    public string? Revision { get; init; }

    /// <summary>The missing file's path in the repository, when a file is missing.</summary>
    public string? FilePath { get; init; }
}

/// <summary>The Hub kept answering 429 Too Many Requests after the configured retries.</summary>
public sealed class HubRateLimitedException : HubException
{
    /// <summary>Creates the exception.</summary>
    public HubRateLimitedException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What went wrong and what to do.</param>
    public HubRateLimitedException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    /// <param name="message">What went wrong and what to do.</param>
    /// <param name="innerException">The cause.</param>
    public HubRateLimitedException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>How long the Hub asked to wait before trying again, when it said.</summary>
    public TimeSpan? RetryAfter { get; init; }
}

/// <summary>
/// The Hub could not be reached (no network, DNS, proxy, timeout) or kept failing (5xx) after the configured retries,
/// and the files are not in the cache either.
/// </summary>
public sealed class HubUnavailableException : HubException
{
    /// <summary>Creates the exception.</summary>
    public HubUnavailableException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What went wrong and what to do.</param>
    public HubUnavailableException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    /// <param name="message">What went wrong and what to do.</param>
    /// <param name="innerException">The cause.</param>
    public HubUnavailableException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// Offline mode (<c>HF_HUB_OFFLINE=1</c> or <see cref="HubOptions.Offline"/>) is on and what was asked for is not in the
/// cache; <see cref="MissingPaths"/> names what is missing.
/// </summary>
public sealed class HubOfflineException : HubException
{
    /// <summary>Creates the exception.</summary>
    public HubOfflineException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What went wrong and what to do.</param>
    public HubOfflineException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    /// <param name="message">What went wrong and what to do.</param>
    /// <param name="innerException">The cause.</param>
    public HubOfflineException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The cache paths (a ref, a snapshot folder or files in it) that are missing.</summary>
    public IReadOnlyList<string> MissingPaths { get; init; } = [];
}

/// <summary>
/// Content was refused: a downloaded file did not match the size or hash the Hub announced, or a repository file name,
/// external-data reference or cache link would lead outside the cache. Nothing is kept from the refused file.
/// </summary>
public sealed class HubIntegrityException : HubException
{
    /// <summary>Creates the exception.</summary>
    public HubIntegrityException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What went wrong and what to do.</param>
    public HubIntegrityException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    /// <param name="message">What went wrong and what to do.</param>
    /// <param name="innerException">The cause.</param>
    public HubIntegrityException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The repository file concerned, when there is one.</summary>
    public string? FilePath { get; init; }
}
