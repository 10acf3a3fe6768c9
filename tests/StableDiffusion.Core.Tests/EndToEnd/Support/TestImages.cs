using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace StableDiffusion.Core.Tests.EndToEnd.Support;

/// <summary>Synthetic input pictures and masks for image-to-image and inpainting tests.</summary>
internal static class TestImages
{
    /// <summary>An opaque picture with smooth gradients and a few edges.</summary>
    public static Image<Rgb24> Picture(int width = 64, int height = 64)
    {
        var image = new Image<Rgb24>(width, height);
        image.ProcessPixelRows(rows =>
        {
            for (int y = 0; y < rows.Height; y++)
            {
                Span<Rgb24> row = rows.GetRowSpan(y);
                for (int x = 0; x < row.Length; x++)
                {
                    bool square = x > width / 4 && x < width / 2 && y > height / 3 && y < 2 * height / 3;
                    row[x] = new Rgb24((byte)(255 * x / Math.Max(1, width - 1)), (byte)(255 * y / Math.Max(1, height - 1)), square ? (byte)230 : (byte)40);
                }
            }
        });
        return image;
    }

    /// <summary>The picture with a translucent pixel in it.</summary>
    public static Image<Rgba32> Translucent(int width = 64, int height = 64)
    {
        using Image<Rgb24> picture = Picture(width, height);
        Image<Rgba32> image = picture.CloneAs<Rgba32>();
        image[width / 2, height / 2] = new Rgba32(10, 20, 30, 128);
        return image;
    }

    /// <summary>A mask whose central square (half the sides) has <paramref name="inside"/> and the rest <paramref name="outside"/>.</summary>
    public static Image<L8> Mask(int width = 64, int height = 64, byte inside = 255, byte outside = 0)
    {
        var mask = new Image<L8>(width, height);
        mask.ProcessPixelRows(rows =>
        {
            for (int y = 0; y < rows.Height; y++)
            {
                Span<L8> row = rows.GetRowSpan(y);
                for (int x = 0; x < row.Length; x++)
                {
                    bool repaint = x >= width / 4 && x < 3 * width / 4 && y >= height / 4 && y < 3 * height / 4;
                    row[x] = new L8(repaint ? inside : outside);
                }
            }
        });
        return mask;
    }
}
