using System.Diagnostics;
using System.Reflection;

namespace MipKeyAgent.Cli.Tests.Packaging;

/// <summary>
/// scripts/install.sh staged into a temporary --destdir from this build's mipkey (--from, so no publish runs here):
/// the layout under the prefix, the program runnable through its bin/ link, bash completion answered by the
/// program, the man page, the units pointing at the prefix, and --uninstall removing all of it.
/// </summary>
public sealed class InstallScriptTests : IDisposable
{
    private static readonly string Root = typeof(InstallScriptTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "RepoRoot").Value!;

    private readonly string _dest = Directory.CreateTempSubdirectory("mipkey-install-").FullName;

    public void Dispose() => Directory.Delete(_dest, recursive: true);

    private string Staged(string path) => _dest + path;

    [Fact]
    public void Install_DestdirAndPrefix_ProgramCompletionManPageAndUnitsUnderThePrefix()
    {
        Run(Path.Combine(Root, "scripts", "install.sh"), "--prefix", "/opt/mk", "--destdir", _dest, "--from", AppContext.BaseDirectory);

        var link = new FileInfo(Staged("/opt/mk/bin/mipkey"));
        Assert.Equal("../lib/mipkey/mipkey", link.LinkTarget);
        Assert.True(File.Exists(Staged("/opt/mk/lib/mipkey/mipkey.dll")));
        Assert.Empty(Directory.GetFiles(Staged("/opt/mk/lib/mipkey"), "*.pdb"));
        var help = Run(link.FullName, "ha", "--help");
        Assert.Contains("Runs the home agent", help, StringComparison.Ordinal);

        // Completion: the program's own suggestions, filtered by bash to the word being typed.
        var completion = Staged("/opt/mk/share/bash-completion/completions/mipkey");
        Assert.Equal(["ha"], Complete(completion, "mipkey h"));
        Assert.Equal(["--store", "--store-password-file"], Complete(completion, "mipkey ha --sto"));
        Assert.Equal(["raw", "tap", "unix"], Complete(completion, "mipkey mn --transport "));

        var man = Run("man", "-l", Staged("/opt/mk/share/man/man1/mipkey.1"));
        Assert.Contains("MIPKEY HA", man, StringComparison.Ordinal);
        Assert.Contains("Runs a mobile node agent", man, StringComparison.Ordinal);

        foreach (var unit in new[] { "mipkey-ha.service", "mipkey-mn@.service" })
        {
            var text = File.ReadAllText(Staged($"/etc/systemd/system/{unit}"));
            Assert.Contains("ExecStart=/opt/mk/bin/mipkey ", text, StringComparison.Ordinal);
            Assert.DoesNotContain("/usr/local", text, StringComparison.Ordinal);
        }
        Assert.StartsWith("u mipkey ", File.ReadAllText(Staged("/etc/sysusers.d/mipkey.conf")), StringComparison.Ordinal);

        Run(Path.Combine(Root, "scripts", "install.sh"), "--prefix", "/opt/mk", "--destdir", _dest, "--uninstall");
        var left = Directory.EnumerateFiles(_dest, "*", SearchOption.AllDirectories).ToList();
        Assert.True(left.Count == 0, string.Join('\n', left));
    }

    [Fact]
    public void Install_RelativePrefix_Refused()
    {
        var (code, output) = Start(Path.Combine(Root, "scripts", "install.sh"), "--prefix", "usr", "--destdir", _dest, "--from", AppContext.BaseDirectory);
        Assert.Equal(2, code);
        Assert.Contains("--prefix must be an absolute path", output, StringComparison.Ordinal);
    }

    /// <summary>What the completion function offers for <paramref name="line"/> typed up to its end, one per line.</summary>
    private string[] Complete(string completion, string line)
    {
        var script = $"""
            source '{completion}'
            PATH='{Staged("/opt/mk/bin")}':$PATH
            COMP_LINE='{line}'; COMP_POINT=${"{"}#COMP_LINE{"}"}
            read -ra COMP_WORDS <<< "$COMP_LINE"; [[ "$COMP_LINE" == *' ' ]] && COMP_WORDS+=('')
            COMP_CWORD=$(( ${"{"}#COMP_WORDS[@]{"}"} - 1 ))
            _mipkey; printf '%s\n' "${"{"}COMPREPLY[@]{"}"}"
            """;
        return Run("/bin/bash", "-c", script).Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    private static string Run(string program, params string[] arguments)
    {
        var (code, output) = Start(program, arguments);
        Assert.True(code == 0, $"{program} {string.Join(' ', arguments)}: exit {code}\n{output}");
        return output;
    }

    private static (int Code, string Output) Start(string program, params string[] arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        start.Environment["MANWIDTH"] = "200";
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout + stderr.Result);
    }
}
