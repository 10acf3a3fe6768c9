namespace StableDiffusion.Schedulers;

/// <summary>
/// The converted model outputs a multistep solver keeps, oldest first, in a fixed array whose buffers are reused:
/// the buffer of the entry that drops out holds the next output, so steps allocate nothing once warm.
/// </summary>
internal static class ModelOutputHistory
{
    /// <summary>The oldest entry's buffer when it has <paramref name="length"/> elements, else a new one.</summary>
    public static float[] Oldest(float[]?[] history, int length) =>
        history[0] is { } buffer && buffer.Length == length ? buffer : new float[length];

    /// <summary>Drops the oldest entry and appends <paramref name="newest"/>.</summary>
    public static void Append(float[]?[] history, float[] newest)
    {
        Array.Copy(history, 1, history, 0, history.Length - 1);
        history[^1] = newest;
    }

    /// <summary>
    /// Rotates the history by one and returns the newest entry's buffer for the caller to fill; <paramref name="count"/>,
    /// the number of valid entries, grows up to the history's length.
    /// </summary>
    public static float[] Rotate(float[]?[] history, ref int count, int length)
    {
        float[] newest = Oldest(history, length);
        Append(history, newest);
        count = Math.Min(count + 1, history.Length);
        return newest;
    }
}
