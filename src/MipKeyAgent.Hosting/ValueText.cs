using MipKeyAgent.Esp;

namespace MipKeyAgent.Hosting;

/// <summary>How the agents write values in logs and status (the syntax the config files read).</summary>
public static class ValueText
{
    public static string SuiteName(EspSuite suite) => suite switch
    {
        EspSuite.AesGcm256 => "aes-256-gcm",
        EspSuite.AhHmacSha256 => "ah-hmac-sha256",
        _ => "aes-128-cbc-hmac-sha256",
    };

    /// <summary>500ms, 30s, 5m, 2h: the units <c>ConfigValues.TryParseDuration</c> reads.</summary>
    public static string FormatDuration(TimeSpan duration) => duration.TotalSeconds switch
    {
        < 1 => $"{duration.TotalMilliseconds:0}ms",
        < 120 => $"{duration.TotalSeconds:0.###}s",
        < 7200 => $"{duration.TotalMinutes:0.##}m",
        _ => $"{duration.TotalHours:0.##}h",
    };
}
