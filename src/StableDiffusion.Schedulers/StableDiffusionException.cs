namespace StableDiffusion;

/// <summary>
/// The base of every exception the StableDiffusion packages throw for a failure of their own (a model, a download, a
/// configuration, an execution provider), so an application can catch them all in one place. Bad arguments are still
/// reported with <see cref="ArgumentException"/> and its subclasses, as everywhere in .NET.
/// </summary>
/// <remarks>
/// It lives in StableDiffusion.Schedulers because that package depends on no other: StableDiffusion.Safety and
/// StableDiffusion.Core reference it, so the three packages share one base type without a shared internal assembly.
/// </remarks>
public abstract class StableDiffusionException : Exception
{
    /// <summary>Creates the exception.</summary>
    protected StableDiffusionException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What went wrong, where, and what to do.</param>
    protected StableDiffusionException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    /// <param name="message">What went wrong, where, and what to do.</param>
    /// <param name="innerException">The cause.</param>
    protected StableDiffusionException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}
