using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace MipKeyAgent.Cli.Tests.Packaging;

/// <summary>
/// The systemd units of packaging/systemd as scripts/install.sh installs them: <c>systemd-analyze verify</c>
/// finds nothing (no unknown or misspelt setting, an executable ExecStart) and <c>systemd-analyze security
/// --offline=true</c> rates each at or below 2.0 ("OK"; each remaining point is explained in docs/operations.md).
/// Both work without a running systemd.
/// </summary>
public sealed partial class SystemdUnitTests(ITestOutputHelper log) : IDisposable
{
    private static readonly string Root = typeof(SystemdUnitTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "RepoRoot").Value!;

    private readonly string _dir = Directory.CreateTempSubdirectory("mipkey-units-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string, string> Units => new()
    {
        { "mipkey-ha.service", "mipkey-ha.service" },
        { "mipkey-mn@.service", "mipkey-mn@mn1.service" },
    };

    [Theory]
    [MemberData(nameof(Units))]
    public void Unit_SystemdAnalyzeVerify_NoFindings(string file, string instance)
    {
        var unit = Installed(file, instance);
        var (code, output) = Run("systemd-analyze", "verify", "--man=no", unit);
        Assert.True(code == 0 && output.Length == 0, $"systemd-analyze verify {file}: exit {code}\n{output}");
    }

    [Fact]
    public void BrokenUnit_SystemdAnalyzeVerify_ReportsTheSetting()
    {
        // The check above can fail: a misspelt setting is a finding.
        var unit = Installed("mipkey-ha.service", "mipkey-ha.service", text => text.Replace("ProtectHome=yes", "ProtectHomes=yes", StringComparison.Ordinal));
        var (_, output) = Run("systemd-analyze", "verify", "--man=no", unit);
        Assert.Contains("ProtectHomes", output, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Units))]
    public void Unit_SystemdAnalyzeSecurity_ExposureAtMostTwo(string file, string instance)
    {
        var unit = Installed(file, instance);
        var (code, output) = Run("systemd-analyze", "security", "--offline=true", "--no-pager", unit);
        Assert.True(code == 0, $"systemd-analyze security {file}: exit {code}\n{output}");
        var match = ExposureLine().Match(output);
        Assert.True(match.Success, output);
        double exposure = double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
        log.WriteLine($"{file}: exposure {exposure:F1}");
        Assert.True(exposure <= 2.0, $"{file}: exposure {exposure}\n{output}");
    }

    [Theory]
    [MemberData(nameof(Units))]
    public void Unit_Privileges_OnlyNetRawAndNetAdminForTheMipkeyUser(string file, string instance)
    {
        _ = instance;
        var settings = File.ReadAllLines(Path.Combine(Root, "packaging", "systemd", file))
            .Where(l => l.Contains('=', StringComparison.Ordinal) && !l.StartsWith('#'))
            .Select(l => l.Split('=', 2)).GroupBy(p => p[0], p => p[1]).ToDictionary(g => g.Key, g => g.ToList());
        Assert.Equal(["CAP_NET_RAW CAP_NET_ADMIN"], settings["CapabilityBoundingSet"]);
        Assert.Equal(["CAP_NET_RAW CAP_NET_ADMIN"], settings["AmbientCapabilities"]);
        Assert.Equal(["mipkey"], settings["User"]);
        Assert.Equal(["yes"], settings["NoNewPrivileges"]);
        Assert.Equal(["strict"], settings["ProtectSystem"]);
        Assert.Equal(["0700"], settings["StateDirectoryMode"]);
        Assert.Equal(["0077"], settings["UMask"]);
        Assert.Equal(["SIGTERM"], settings["KillSignal"]);
        Assert.Equal(["on-failure"], settings["Restart"]);
        Assert.Equal(["AF_INET6 AF_INET AF_UNIX AF_PACKET AF_NETLINK"], settings["RestrictAddressFamilies"]);
        Assert.Contains("@system-service", settings["SystemCallFilter"]);
    }

    /// <summary>
    /// The unit as the install script writes it (its ExecStart under the prefix; here one whose bin/mipkey is an
    /// executable, since verify checks that), named <paramref name="instance"/> for a template.
    /// </summary>
    private string Installed(string file, string instance, Func<string, string>? edit = null)
    {
        var prefix = Path.Combine(_dir, "prefix");
        Directory.CreateDirectory(Path.Combine(prefix, "bin"));
        var program = Path.Combine(prefix, "bin", "mipkey");
        File.WriteAllText(program, "#!/bin/sh\nexit 0\n");
        File.SetUnixFileMode(program, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var text = File.ReadAllText(Path.Combine(Root, "packaging", "systemd", file)).Replace("/usr/local/", prefix + "/", StringComparison.Ordinal);
        File.WriteAllText(Path.Combine(_dir, file), edit is null ? text : edit(text));
        return Path.Combine(_dir, instance);
    }

    private (int Code, string Output) Run(string program, params string[] arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = _dir };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        // No colours or pager; the offline checks need no running systemd.
        start.Environment["SYSTEMD_COLORS"] = "0";
        start.Environment["SYSTEMD_PAGER"] = "cat";
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, (stdout + stderr.Result).Trim());
    }

    [GeneratedRegex(@"Overall exposure level for \S+: (\d+\.\d)")]
    private static partial Regex ExposureLine();
}
