using System.Diagnostics;
using System.Text.Json;
using MipKeyAgent.Esp;

namespace MipKeyAgent.Conformance.Tests;

/// <summary>
/// Runs the independent tools the conformance tests compare against: Debian's
/// /usr/bin/python3 with scapy and cryptography, and tshark. A missing tool fails the test
/// with the install hint; it never skips (test.sh installs them).
/// </summary>
internal static class Oracles
{
    private const string Python = "/usr/bin/python3";

    private static string OracleScript => Path.Combine(AppContext.BaseDirectory, "oracles", "mipkey_oracle.py");

    public static JsonElement Scapy(string verb, object spec)
    {
        var json = JsonSerializer.Serialize(spec);
        var (code, stdout, stderr) = Run(Python, [OracleScript, verb, json]);
        Assert.True(code == 0, $"mipkey_oracle.py {verb} failed ({code}): {stderr}\nspec: {json}");
        return JsonDocument.Parse(stdout).RootElement.Clone();
    }

    /// <summary>Runs keywrap_oracle.py (python3-cryptography's RFC 5649) over a batch of cases.</summary>
    public static JsonElement KeyWrap(string verb, object cases)
    {
        var json = JsonSerializer.Serialize(cases);
        var script = Path.Combine(AppContext.BaseDirectory, "oracles", "keywrap_oracle.py");
        var (code, stdout, stderr) = Run(Python, [script, verb, json]);
        Assert.True(code == 0, $"keywrap_oracle.py {verb} failed ({code}): {stderr}");
        return JsonDocument.Parse(stdout).RootElement.Clone();
    }

    public static (int Code, string Stdout, string Stderr) TShark(params string[] args)
    {
        const string tshark = "/usr/bin/tshark";
        Assert.True(File.Exists(tshark), "tshark is missing: run ./test.sh, which installs Debian's tshark");
        return Run(tshark, args);
    }

    private static (int Code, string Stdout, string Stderr) Run(string file, IEnumerable<string> args)
    {
        Assert.True(File.Exists(file), $"{file} is missing: run ./test.sh, which installs the Debian packages");
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        // Debian's python must not pick up a different interpreter's site-packages.
        psi.Environment.Remove("PYTHONPATH");
        psi.Environment.Remove("PYTHONHOME");
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"{file} timed out");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}
