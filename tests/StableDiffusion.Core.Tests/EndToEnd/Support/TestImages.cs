using StableDiffusion.Imaging;

namespace StableDiffusion.Core.Tests.EndToEnd.Support;

/// <summary>Synthetic input pictures and masks for image-to-image and inpainting tests.</summary>
internal static class TestImages
{
    /// <summary>An opaque picture with smooth gradients and a few edges.</summary>
    public static RgbImage Picture(int width = 64, int height = 64)
    {
        var rgb = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                bool square = x > width / 4 && x < width / 2 && y > height / 3 && y < 2 * height / 3;
                int o = ((y * width) + x) * 3;
                rgb[o] = (byte)(255 * x / Math.Max(1, width - 1));
                rgb[o + 1] = (byte)(255 * y / Math.Max(1, height - 1));
                rgb[o + 2] = square ? (byte)230 : (byte)40;
            }
        }

        return RgbImage.FromRgb(rgb, width, height);
    }

    /// <summary>A grey mask whose central square (half the sides) has <paramref name="inside"/> and the rest <paramref name="outside"/>.</summary>
    public static RgbImage Mask(int width = 64, int height = 64, byte inside = 255, byte outside = 0)
    {
        var rgb = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                bool repaint = x >= width / 4 && x < 3 * width / 4 && y >= height / 4 && y < 3 * height / 4;
                rgb.AsSpan(((y * width) + x) * 3, 3).Fill(repaint ? inside : outside);
            }
        }

        return RgbImage.FromRgb(rgb, width, height);
    }
}
