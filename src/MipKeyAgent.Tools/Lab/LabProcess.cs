using System.Diagnostics;

namespace MipKeyAgent.Tools.Lab;

/// <summary>Runs one lab command (iproute2, sysctl) to its end and fails loudly with its output.</summary>
internal static class LabProcess
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    /// <summary>Runs <paramref name="command"/> (program first); returns its standard output, throws with both outputs when it fails.</summary>
    public static string Run(IReadOnlyList<string> command)
    {
        ArgumentNullException.ThrowIfNull(command);
        var start = new ProcessStartInfo(command[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in command.Skip(1))
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {command[0]}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(Timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{string.Join(' ', command)} did not finish in {Timeout.TotalSeconds} s");
        }

        var output = stdout.GetAwaiter().GetResult();
        var errors = stderr.GetAwaiter().GetResult();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{string.Join(' ', command)} exited {process.ExitCode}: {errors}{output}");
        }

        return output;
    }
}
