namespace StableDiffusion.Safety;

/// <summary>
/// Where <see cref="ClipImageProcessor"/> resizes an image to: transformers' <c>size</c> dictionary, either
/// <c>{"shortest_edge": n}</c> (keep the aspect ratio) or <c>{"height": h, "width": w}</c> (exactly that size).
/// </summary>
public sealed record ResizeTarget
{
    private ResizeTarget(int? shortestEdge, ImageSize? size)
    {
        ShortestEdge = shortestEdge;
        Size = size;
    }

    /// <summary>The length the shorter side is resized to (<c>shortest_edge</c>), or null for an exact size.</summary>
    public int? ShortestEdge { get; }

    /// <summary>The exact output size (<c>height</c> and <c>width</c>), or null for a shortest-edge resize.</summary>
    public ImageSize? Size { get; }

    /// <summary>Resize so that the shorter side becomes <paramref name="shortestEdge"/> pixels, keeping the aspect ratio.</summary>
    /// <param name="shortestEdge">The length of the shorter side after resizing, at least 1.</param>
    public static ResizeTarget ToShortestEdge(int shortestEdge)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(shortestEdge, 1);
        return new ResizeTarget(shortestEdge, null);
    }

    /// <summary>Resize to exactly <paramref name="height"/> x <paramref name="width"/> pixels.</summary>
    /// <param name="height">The output height, at least 1.</param>
    /// <param name="width">The output width, at least 1.</param>
    public static ResizeTarget ToSize(int height, int width)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        return new ResizeTarget(null, new ImageSize(height, width));
    }

    /// <summary>
    /// The size an image of <paramref name="height"/> x <paramref name="width"/> is resized to (transformers'
    /// <c>get_resize_output_image_size</c> with <c>default_to_square=False</c>): the short side becomes
    /// <see cref="ShortestEdge"/> and the long side <c>int(shortest_edge * long / short)</c>, truncated.
    /// </summary>
    /// <param name="height">The input height.</param>
    /// <param name="width">The input width.</param>
    public ImageSize GetOutputSize(int height, int width)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        if (Size is { } exact)
        {
            return exact;
        }

        int shortest = ShortestEdge!.Value;
        (int shortSide, int longSide) = width <= height ? (width, height) : (height, width);

        // Python computes int(n * long / short): an exact integer product, one true (double) division, truncation.
        int newLong = checked((int)((double)((long)shortest * longSide) / shortSide));
        return width <= height ? new ImageSize(newLong, shortest) : new ImageSize(shortest, newLong);
    }

    /// <inheritdoc/>
    public override string ToString() => Size is { } exact
        ? $"{{\"height\": {exact.Height}, \"width\": {exact.Width}}}"
        : $"{{\"shortest_edge\": {ShortestEdge}}}";
}
