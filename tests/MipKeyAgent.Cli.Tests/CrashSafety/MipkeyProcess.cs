using System.Diagnostics;

namespace MipKeyAgent.Cli.Tests.CrashSafety;

/// <summary>Starts this build's <c>mipkey.dll</c> as a child process whose output lines go to a log.</summary>
internal static class MipkeyProcess
{
    /// <summary>Runs <c>dotnet mipkey.dll ARGS</c> in <paramref name="directory"/>; stdout and stderr lines go to <paramref name="log"/>.</summary>
    public static Process Start(string directory, Action<string?> log, params string[] args)
    {
        // The dotnet host running the tests (the SDK sets DOTNET_HOST_PATH), else the one on PATH.
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
        var info = new ProcessStartInfo(dotnet)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = directory,
        };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "mipkey.dll"));
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => log(e.Data);
        process.ErrorDataReceived += (_, e) => log(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }
}
