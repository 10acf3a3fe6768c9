using System.Globalization;

/// <summary>This process's memory as Linux reports it.</summary>
internal static class ProcessStatus
{
    /// <summary>A <c>/proc/self/status</c> field (<c>VmRSS</c>, <c>VmHWM</c>) in MiB.</summary>
    public static double MiB(string field)
    {
        string line = File.ReadLines("/proc/self/status").First(l => l.StartsWith(field + ":", StringComparison.Ordinal));
        // "VmHWM:\t 1234 kB", or with no space at all after the tab once the number is long.
        return long.Parse(line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
    }
}
