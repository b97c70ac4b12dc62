using System.Diagnostics;

namespace MipKeyAgent.Lab.Tests;

/// <summary>Runs lab commands (iproute2, python) and fails loudly with their output.</summary>
internal static class Shell
{
    /// <summary>Runs one command given as an argument vector, program first (the lab topology's commands).</summary>
    public static string Command(IReadOnlyList<string> command) => Run(command[0], [.. command.Skip(1)]);

    public static string Run(string file, params string[] arguments) => RunAsync(file, arguments, TimeSpan.FromSeconds(20)).GetAwaiter().GetResult().Output;

    public static async Task<(int ExitCode, string Output)> RunAsync(string file, IEnumerable<string> arguments, TimeSpan timeout, bool check = true)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {file}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using (var cts = new CancellationTokenSource(timeout))
        {
            try
            {
                await process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"{file} {string.Join(' ', start.ArgumentList)} did not finish in {timeout}");
            }
        }

        var output = await stdout + await stderr;
        if (check && process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', start.ArgumentList)} exited {process.ExitCode}: {output}");
        }

        return (process.ExitCode, output);
    }

    /// <summary>Debian's interpreter (the one with scapy) when present.</summary>
    public static string Python => File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
}
