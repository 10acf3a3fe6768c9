#!/usr/bin/env dotnet
#:package SkiaSharp
#:package SkiaSharp.NativeAssets.Linux.NoDependencies
#:property PublishAot=false

// Plots seconds per image against batch size for each GPU system of a side-by-side.json (eng/bench/side_by_side.py):
//   dotnet run eng/bench/plot.cs -- docs/benchmarks/results/DATE/side-by-side.json docs/benchmarks/results/DATE/side-by-side.png [FONT.ttf]
// A system or batch without a median (not measured) is left out of its line. The font defaults to DejaVu Sans (Linux).
using System.Globalization;
using System.Text.Json;
using SkiaSharp;

if (args.Length < 2)
{
    Console.Error.WriteLine("usage: plot.cs SIDE_BY_SIDE_JSON OUT_PNG [FONT_TTF]");
    return 2;
}

string fontPath = args.Length > 2 ? args[2] : "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
using JsonDocument document = JsonDocument.Parse(File.ReadAllText(args[0]));
var series = new List<(string Name, List<(int Batch, double Seconds)> Points)>();
foreach (JsonProperty system in document.RootElement.GetProperty("gpu").EnumerateObject())
{
    var points = new List<(int, double)>();
    foreach (JsonProperty batch in system.Value.EnumerateObject())
    {
        if (batch.Value.TryGetProperty("seconds_per_image_median", out JsonElement value) && value.ValueKind == JsonValueKind.Number)
        {
            points.Add((int.Parse(batch.Name["batch".Length..], CultureInfo.InvariantCulture), value.GetDouble()));
        }
    }

    series.Add((system.Name, [.. points.OrderBy(p => p.Item1)]));
}

const int Width = 1000, Height = 560, Left = 90, Right = 340, Top = 75, Bottom = 70;
int[] batches = [.. series.SelectMany(s => s.Points.Select(p => p.Batch)).Distinct().Order()];
// A logarithmic axis: eager batch 1 is ten times compiled batch 8, and the fast systems' differences must still show.
double[] values = [.. series.SelectMany(s => s.Points.Select(p => p.Seconds))];
double low = Math.Pow(10, Math.Floor(Math.Log10(values.DefaultIfEmpty(0.1).Min()) * 5) / 5);
double high = Math.Pow(10, Math.Ceiling(Math.Log10(values.DefaultIfEmpty(1).Max()) * 5) / 5);
float X(int batch) => Left + ((Width - Left - Right) * (float)(Math.Log2(batch) - Math.Log2(batches[0])) / (float)Math.Max(1e-9, Math.Log2(batches[^1]) - Math.Log2(batches[0])));
float Y(double seconds) => Height - Bottom - ((Height - Top - Bottom) * (float)(Math.Log(seconds / low) / Math.Log(high / low)));
double[] ticks = [.. new[] { 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.7, 1, 1.5, 2, 3, 5, 7, 10, 20, 50 }.Where(t => t >= low && t <= high)];

using var surface = SKSurface.Create(new SKImageInfo(Width, Height));
SKCanvas canvas = surface.Canvas;
canvas.Clear(SKColors.White);
using SKTypeface typeface = SKTypeface.FromFile(fontPath) ?? throw new FileNotFoundException($"No font at '{fontPath}': pass a .ttf file as the third argument.");
using var font = new SKFont(typeface, 14);
using var title = new SKFont(typeface, 17);
using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true, StrokeWidth = 1 };
using var grid = new SKPaint { Color = new SKColor(220, 220, 220), StrokeWidth = 1 };
canvas.DrawText("Seconds per 512x512 image (50 PNDM steps), by batch size", Left, 30, SKTextAlign.Left, title, ink);
foreach (double seconds in ticks)
{
    canvas.DrawLine(Left, Y(seconds), Width - Right, Y(seconds), grid);
    canvas.DrawText(seconds.ToString("0.00", CultureInfo.InvariantCulture), Left - 10, Y(seconds) + 5, SKTextAlign.Right, font, ink);
}

canvas.DrawText("seconds per image (log scale)", Left - 10, Top - 8, SKTextAlign.Left, font, ink);

foreach (int batch in batches)
{
    canvas.DrawText(batch.ToString(CultureInfo.InvariantCulture), X(batch), Height - Bottom + 22, SKTextAlign.Center, font, ink);
}

canvas.DrawText("batch size (images per call)", (Left + Width - Right) / 2f, Height - 20, SKTextAlign.Center, font, ink);
canvas.DrawLine(Left, Top, Left, Height - Bottom, ink);
canvas.DrawLine(Left, Height - Bottom, Width - Right, Height - Bottom, ink);
SKColor[] colors = [new(31, 119, 180), new(255, 127, 14), new(44, 160, 44), new(214, 39, 40), new(148, 103, 189)];
int legend = 0;
foreach (((string name, List<(int Batch, double Seconds)> points), int index) in series.Select((s, i) => (s, i)))
{
    using var pen = new SKPaint { Color = colors[index % colors.Length], IsAntialias = true, StrokeWidth = 3, Style = SKPaintStyle.Stroke };
    using var dot = new SKPaint { Color = colors[index % colors.Length], IsAntialias = true };
    for (int i = 1; i < points.Count; i++)
    {
        canvas.DrawLine(X(points[i - 1].Batch), Y(points[i - 1].Seconds), X(points[i].Batch), Y(points[i].Seconds), pen);
    }

    foreach ((int batch, double seconds) in points)
    {
        canvas.DrawCircle(X(batch), Y(seconds), 5, dot);
    }

    // The values go in the legend, where the lines' labels cannot overlap where systems are close.
    float y = Top + 20 + (legend++ * 48);
    canvas.DrawRect(Width - Right + 20, y - 10, 14, 14, dot);
    canvas.DrawText(points.Count == 0 ? $"{name} (none)" : name, Width - Right + 42, y + 2, SKTextAlign.Left, font, ink);
    string figures = string.Join("   ", points.Select(p => $"{p.Batch}: {p.Seconds.ToString("0.000", CultureInfo.InvariantCulture)}"));
    canvas.DrawText(figures, Width - Right + 42, y + 22, SKTextAlign.Left, font, ink);
}

using SKImage image = surface.Snapshot();
using SKData png = image.Encode(SKEncodedImageFormat.Png, 100);
File.WriteAllBytes(args[1], png.ToArray());
Console.WriteLine($"wrote {args[1]}");
return 0;
