using System.Globalization;
using System.Text;

namespace StableDiffusion.Hardening;

/// <summary>The Markdown report, echoed to the console as it grows.</summary>
internal sealed class Report
{
    private readonly StringBuilder _text = new();

    public void Line(string text = "")
    {
        _text.AppendLine(text);
        Console.Error.WriteLine(text);
    }

    public void Table(IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows)
    {
        Line("| " + string.Join(" | ", header) + " |");
        Line("|" + string.Concat(header.Select(_ => " --- |")));
        foreach (IReadOnlyList<string> row in rows)
        {
            Line("| " + string.Join(" | ", row) + " |");
        }

        Line();
    }

    public static string Ms(TimeSpan value) => value.TotalMilliseconds.ToString("F2", CultureInfo.InvariantCulture);

    public static string Number(double value, string format = "F2") => value.ToString(format, CultureInfo.InvariantCulture);

    public static string Number(int value, string format) => value.ToString(format, CultureInfo.InvariantCulture);

    public static string MiB(double bytes) => (bytes / (1024 * 1024)).ToString("F1", CultureInfo.InvariantCulture);

    public override string ToString() => _text.ToString();
}
