using System.CommandLine;
using MipKeyAgent.Cli.Config;
using MipKeyAgent.Store;
using Spectre.Console;

namespace MipKeyAgent.Cli.Commands;

/// <summary>The <c>mipkey</c> command tree. Tests build it with their own console and writer.</summary>
internal static class CliApp
{
    public static RootCommand Build(Func<IAnsiConsole>? console = null, TextWriter? output = null)
    {
        console ??= DefaultConsole;
        output ??= Console.Out;
        var root = new RootCommand(
            "mipkey: keeps keys fresh between a Mobile IPv6 home agent and its mobile nodes (MIPKEY; the protocol is docs/PROTOCOL.md in the source tree).\n\n" +
            "Examples:\n" +
            "  mipkey demo                      simulated HA + 3 MNs in virtual time; writes mipkey-demo.pcap\n" +
            "  mipkey ha -c ha.conf -i veth0    run a home agent\n" +
            "  mipkey mn -c mn1.conf -i veth1   run a mobile node\n" +
            "  mipkey ha status                 counters of the running home agent\n" +
            "  mipkey keys show                 its generations and SPIs (never key bytes)\n" +
            "  mipkey replay x.pcap -c ha.conf  a capture through the engine offline, decrypted, as a timeline\n" +
            "  sudo mipkey lab run rekey        namespaces, real ha/mn processes, keys rotating live\n" +
            "  sudo mipkey bench process        the ha process under 10,000 simulated nodes over a veth (docs/benchmarks.md)")
        {
            DemoCommand.Create(console),
            HaCommand.Create(console),
            MnCommand.Create(),
            KeysCommand.Create(console),
            QkdNodeCommand.Create(output),
            ProvisionCommand.Create(output),
            FuzzCommand.Create(output),
            ReplayCommand.Create(console),
            CaptureCommand.Create(console),
            LabCommand.Create(output),
            BenchCommand.Create(output),
            ConformCommand.Create(output),
            ServerCommand.Create(), ClientCommand.Create(),
        };
        return root;
    }

    /// <summary>
    /// The terminal; when the output is piped or logged Spectre falls back to 80 columns and wraps the
    /// status and key tables into one-word cells, so use <c>COLUMNS</c> or 200 then.
    /// </summary>
    private static IAnsiConsole DefaultConsole()
    {
        var console = AnsiConsole.Console;
        if (Console.IsOutputRedirected)
        {
            console.Profile.Width = int.TryParse(Environment.GetEnvironmentVariable("COLUMNS"), out int columns) && columns > 0 ? columns : 200;
        }

        return console;
    }

    /// <summary>
    /// Parses and runs; a command-line, configuration, store or I/O problem prints one line naming the
    /// option or file (and line and field) and exits 2, without a stack trace.
    /// </summary>
    public static Task<int> RunAsync(string[] args) => RunAsync(args, Console.Error);

    /// <summary>As <see cref="RunAsync(string[])"/>, the one-line errors written to <paramref name="error"/> (tests run verbs in process).</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter error, TextWriter? output = null)
    {
        ArgumentNullException.ThrowIfNull(error);
        var parse = Build(output: output).Parse(args);
        if (parse.Errors.Count > 0 && parse.Action is not System.CommandLine.Help.HelpAction)
        {
            // A mistyped or missing option is a mistake like any other: one line, exit 2 (the help text is one --help away).
            var verb = string.Join(' ', parse.CommandResult.Command.Name == "mipkey" ? [] : CommandPath(parse.CommandResult));
            await error.WriteLineAsync($"mipkey: {OneLine(parse.Errors[0].Message)} (see 'mipkey {verb}{(verb.Length > 0 ? " " : "")}--help')").ConfigureAwait(false);
            return 2;
        }
        try
        {
            return await parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false, Output = output ?? Console.Out })
                .ConfigureAwait(false);
        }
        catch (Exception e) when (e is ConfigException or BindingStoreException or IOException or UnauthorizedAccessException or HttpRequestException
            or System.Net.Sockets.SocketException or FormatException or InvalidDataException)
        {
            await error.WriteLineAsync($"mipkey: {OneLine(e.Message)}").ConfigureAwait(false);
            return 2;
        }
    }

    // One line even when a message has several (a list of allowed values, a Kestrel bind failure).
    private static string OneLine(string message) =>
        string.Join(' ', message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    private static Stack<string> CommandPath(System.CommandLine.Parsing.CommandResult result)
    {
        var names = new Stack<string>();
        for (var r = result; r is not null && r.Parent is not null; r = r.Parent as System.CommandLine.Parsing.CommandResult)
        {
            names.Push(r.Command.Name);
        }
        return names;
    }
}
