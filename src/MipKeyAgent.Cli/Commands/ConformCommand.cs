using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using MipKeyAgent.Cli.Config;
using MipKeyAgent.Cli.Replay;
using MipKeyAgent.Cli.Report;
using MipKeyAgent.Conformance;
using MipKeyAgent.Hosting;
using MipKeyAgent.Protocol;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Cli.Commands;

/// <summary>
/// <c>mipkey conform ha</c>: the conformance suite against a live home agent. The tester plays
/// mobile nodes from the target's own provisioning file, one node per case, over a raw socket or
/// a tap on its care-of link, and judges every answer (docs/conformance.md).
/// </summary>
internal static partial class ConformCommand
{
    public static Command Create(TextWriter output)
    {
        var command = new Command("conform",
            "Conformance suite: runs cases, one per protocol rule, against a live agent (ours or anybody's) and gives each a verdict " +
            "PASS / FAIL / INCONCLUSIVE with its evidence (docs/conformance.md).");
        command.Subcommands.Add(CreateHomeAgent(output));
        command.Subcommands.Add(CreateMobileNode(output));
        return command;
    }

    private static Command CreateHomeAgent(TextWriter output)
    {
        var transport = new TransportOptions();
        transport.Interface.Required = false;
        var config = new Option<FileInfo?>("--config", "-c") { Description = "The target's provisioning file (the same file the home agent runs with; mode 0600): its address, vendor ID, mode and nodes. Each case takes nodes of its own, in file order." };
        var homeAgent = new Option<string?>("--home-agent") { Description = "The target's address (default: address in the [home-agent] section)." };
        var careOf = new Option<string?>("--care-of") { Description = "The tester's care-of address on its link (where the target answers)." };
        var list = new Option<bool>("--list") { Description = "List the cases (id, required, clause, title) and exit." };
        var include = new Option<string[]>("--case") { Description = "Run only cases whose id matches (shell-style * and ?; repeatable or comma-separated), e.g. --case 'HA-INIT-*'.", AllowMultipleArgumentsPerToken = true };
        var exclude = new Option<string[]>("--exclude") { Description = "Skip cases whose id matches (as --case).", AllowMultipleArgumentsPerToken = true };
        var junit = new Option<FileInfo?>("--junit") { Description = "Write JUnit XML (one testcase per case; FAIL as failure, INCONCLUSIVE as skipped) for CI systems." };
        var markdown = new Option<FileInfo?>("--markdown") { Description = "Write a Markdown report: the verdict table, then each case that did not pass with its steps and evidence." };
        var pcapDir = new Option<DirectoryInfo?>("--pcap-dir") { Description = "Write ID.pcap (every datagram of the case) and ID.esp_sa (its SAs, tshark's esp_sa table: key material derived from the provisioning) per case." };
        var html = new Option<FileInfo?>("--html") { Description = "Write a self-contained HTML report: the verdicts with each case's steps and evidence, and beside it a ladder diagram per case (FILE without .html + '-cases/ID.html')." };
        var restart = new Option<string?>("--restart-command") { Description = "A shell command that restarts the target and returns when it runs again; without it the restart case is INCONCLUSIVE." };
        var parallel = new Option<int>("--parallel") { Description = "Cases run side by side (the restart and flood cases run alone).", DefaultValueFactory = _ => 6 };
        var timerWait = new Option<int>("--max-timer-wait") { Description = "Longest HA rekey timer (KEY-DIST key lifetime, seconds) the timer cases wait for; longer ones are INCONCLUSIVE.", DefaultValueFactory = _ => 20 };
        var command = new Command("ha",
            "Runs the conformance cases against a live home agent: the tester acts as mobile nodes (fresh node identities per case, taken " +
            "from the target's provisioning file) and drives the target over a raw socket or a tap interface on its care-of link, judging " +
            "every BA, BRR and tunnelled packet it gets back. Prints a line per case as it finishes and a summary table. Exit code 0 only " +
            "when every required case passed; 1 otherwise; 2 on a usage or configuration error. Needs CAP_NET_RAW (raw) or CAP_NET_ADMIN (tap).\n\n" +
            "Examples:\n" +
            "  mipkey conform ha --list\n" +
            "  sudo mipkey conform ha -c ha.conf -i veth-mn --care-of 2001:db8:100::1\n" +
            "  sudo mipkey conform ha -c ha.conf -i veth-mn --care-of 2001:db8:100::1 --case 'HA-INIT-*' --junit conform.xml --pcap-dir cases/\n" +
            "  sudo mipkey conform ha -c ha.conf -i veth-mn --care-of 2001:db8:100::1 --restart-command 'systemctl restart mipkey-ha' --html conform.html")
        {
            config, homeAgent, careOf, list, include, exclude, junit, markdown, pcapDir, html, restart, parallel, timerWait,
        };
        transport.AddTo(command);
        command.SetAction(async (parse, cancellation) =>
        {
            var cases = ConformanceRunner.Select(HomeAgentCases.All, Patterns(parse.GetValue(include)), Patterns(parse.GetValue(exclude)));
            if (parse.GetValue(list))
            {
                await ListAsync(cases, output).ConfigureAwait(false);
                return 0;
            }
            if (cases.Count == 0)
            {
                throw new ConfigException("--case", 0, null, "no case matches");
            }
            var configPath = parse.GetValue(config)?.FullName ?? throw new ConfigException("--config", 0, null, "the target's provisioning file is needed (-c)");
            if (parse.GetValue(transport.Interface) is null)
            {
                throw new ConfigException("--interface", 0, null, "the tester's interface on its care-of link is needed (-i)");
            }
            CheckPaths(parse, configPath, junit, markdown, html);
            var ha = HomeAgentConfig.Load(configPath);
            var target = Address("--home-agent", parse.GetValue(homeAgent)) ?? ha.Address
                ?? throw new ConfigException("--home-agent", 0, null, "no address given and none in the provisioning file");
            var localAddress = Address("--care-of", parse.GetValue(careOf)) ?? throw new ConfigException("--care-of", 0, null, "the tester's care-of address is needed");
            await using var link = transport.Open(parse, localAddress);
            var restartCommand = parse.GetValue(restart);
            var settings = new TargetSettings
            {
                Transport = link,
                HomeAgent = target,
                CareOf = localAddress,
                VendorId = ha.VendorId,
                Implicit = ha.Mode == KeyExchangeMode.Implicit,
                Nodes = [.. ha.Nodes.Select(n => n.Provisioning)],
                Restart = restartCommand is null ? null : token => RunShell(restartCommand, output, token),
                Parallelism = Math.Max(1, parse.GetValue(parallel)),
                MaxTimerWait = TimeSpan.FromSeconds(Math.Max(1, parse.GetValue(timerWait))),
            };
            await output.WriteLineAsync($"mipkey conform ha: {cases.Count} cases against {target} from {localAddress} on {link.Name}, {ha.Nodes.Count} provisioned nodes").ConfigureAwait(false);
            var clock = Stopwatch.StartNew();
            int done = 0;
            var results = await ConformanceRunner.RunAsync(settings, cases,
                result => output.WriteLine(ConformanceReports.ProgressLine(result, Interlocked.Increment(ref done), cases.Count)), cancellation).ConfigureAwait(false);
            var elapsed = clock.Elapsed;
            await output.WriteLineAsync().ConfigureAwait(false);
            await output.WriteAsync(ConformanceReports.Summary(results, elapsed)).ConfigureAwait(false);
            WriteReports(parse, results, elapsed, ha.Nodes, ha.VendorId, "ha", junit, markdown, pcapDir, html, output);
            return results.Any(r => r.FailsRun) ? 1 : 0;
        });
        return command;
    }

    private static void WriteReports(ParseResult parse, IReadOnlyList<CaseResult> results, TimeSpan elapsed, IReadOnlyList<ProvisionedNode> nodes,
        uint vendorId, string role, Option<FileInfo?> junit, Option<FileInfo?> markdown, Option<DirectoryInfo?> pcapDir, Option<FileInfo?> html,
        TextWriter output)
    {
        string title = $"mipkey conform {role}";
        if (parse.GetValue(junit)?.FullName is { } junitPath)
        {
            ConformanceReports.JUnit(results, $"mipkey.conform.{role}", elapsed).Save(junitPath);
            output.WriteLine($"JUnit XML written to {junitPath}");
        }
        if (parse.GetValue(markdown)?.FullName is { } markdownPath)
        {
            File.WriteAllText(markdownPath, ConformanceReports.Markdown(results, title, elapsed));
            output.WriteLine($"Markdown report written to {markdownPath}");
        }
        if (parse.GetValue(pcapDir)?.FullName is { } directory)
        {
            foreach (var result in results)
            {
                ConformanceReports.WriteCaseCapture(directory, result);
            }
            output.WriteLine($"{results.Count} pcaps and key files written to {directory} (tshark -r ID.pcap -o 'uat:esp_sa:...' or copy ID.esp_sa to a profile's esp_sa)");
        }
        if (parse.GetValue(html)?.FullName is { } htmlPath)
        {
            WriteHtml(htmlPath, results, elapsed, nodes, vendorId, title);
            output.WriteLine($"HTML report written to {htmlPath}");
        }
    }

    /// <summary>The index page (verdicts, steps, evidence) and a ladder diagram per case made by the replay report code from the case's datagrams.</summary>
    private static void WriteHtml(string path, IReadOnlyList<CaseResult> results, TimeSpan elapsed, IReadOnlyList<ProvisionedNode> nodes, uint vendorId,
        string title)
    {
        var ladderDirectory = Path.Combine(Path.GetDirectoryName(path)!, Path.GetFileNameWithoutExtension(path) + "-cases");
        Directory.CreateDirectory(ladderDirectory);
        var page = new StringBuilder();
        page.Append("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>").Append(WebUtility.HtmlEncode(title)).Append("</title><style>")
            .Append("body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}")
            .Append(".PASS{background:#d8f5d8}.FAIL{background:#f9d0d0}.INCONCLUSIVE{background:#f5ecc8}pre{background:#f4f4f4;padding:6px;overflow-x:auto}")
            .Append("</style></head><body><h1>").Append(WebUtility.HtmlEncode(title)).Append("</h1><p>")
            .Append(WebUtility.HtmlEncode(ConformanceReports.Summary(results, elapsed).Split("\n\n")[^1])).Append("</p>")
            .Append("<table><tr><th>case</th><th>verdict</th><th>required</th><th>clause</th><th>title</th><th>ladder</th></tr>");
        foreach (var result in results)
        {
            string verdict = ConformanceReports.VerdictText(result.Verdict);
            string ladder = Path.GetFileName(ladderDirectory) + "/" + result.Case.Id + ".html";
            WriteLadder(Path.Combine(ladderDirectory, result.Case.Id + ".html"), result, nodes, vendorId);
            page.Append(CultureInfo.InvariantCulture, $"<tr class=\"{verdict}\"><td><a href=\"#{result.Case.Id}\">{result.Case.Id}</a></td><td>{verdict}</td>")
                .Append(CultureInfo.InvariantCulture, $"<td>{(result.Case.Required ? "yes" : "no")}</td><td>{WebUtility.HtmlEncode(result.Case.Clause)}</td>")
                .Append(CultureInfo.InvariantCulture, $"<td>{WebUtility.HtmlEncode(result.Case.Title)}</td><td><a href=\"{ladder}\">ladder</a></td></tr>");
        }
        page.Append("</table>");
        foreach (var result in results)
        {
            string verdict = ConformanceReports.VerdictText(result.Verdict);
            page.Append(CultureInfo.InvariantCulture, $"<h2 id=\"{result.Case.Id}\" class=\"{verdict}\">{result.Case.Id}: {verdict}</h2><p>{WebUtility.HtmlEncode(result.Case.Title)} ({WebUtility.HtmlEncode(result.Case.Clause)})</p><ol>");
            foreach (var step in result.Case.Steps)
            {
                page.Append("<li>").Append(WebUtility.HtmlEncode(step)).Append("</li>");
            }
            page.Append("</ol>");
            if (result.Verdict != Verdict.Pass)
            {
                page.Append("<p><b>").Append(WebUtility.HtmlEncode(ConformanceReports.Explain(result))).Append("</b></p>");
            }
            page.Append("<pre>").Append(WebUtility.HtmlEncode(ConformanceReports.EvidenceText(result))).Append("</pre>");
        }
        page.Append("</body></html>");
        File.WriteAllText(path, page.ToString());
    }

    private static void WriteLadder(string path, CaseResult result, IReadOnlyList<ProvisionedNode> nodes, uint vendorId)
    {
        var datagrams = result.Evidence.Where(e => e.Datagram is not null).Select(e => new CapturedDatagram(e.Time, e.Datagram!)).ToList();
        var report = CaptureReplay.Run(datagrams, nodes, vendorId, homeAgent: null);
        LadderReportPage.Write(LadderReport.From(report, $"{result.Case.Id} {ConformanceReports.VerdictText(result.Verdict)}: {result.Case.Title}"), path);
    }

    /// <summary>--list: one line per selected case (id, required or optional, clause, title), then the count.</summary>
    private static async Task ListAsync(IReadOnlyList<ConformanceCase> cases, TextWriter output)
    {
        foreach (var @case in cases)
        {
            await output.WriteLineAsync($"{@case.Id,-14} {(@case.Required ? "required" : "optional"),-9} {@case.Clause,-48} {@case.Title}").ConfigureAwait(false);
        }
        await output.WriteLineAsync($"{cases.Count} cases").ConfigureAwait(false);
    }

    /// <summary>Before any case runs: the target's file is readable and every report can be written.</summary>
    private static void CheckPaths(ParseResult parse, string configPath, Option<FileInfo?> junit, Option<FileInfo?> markdown, Option<FileInfo?> html)
    {
        StartChecks.ReadableFile("--config", configPath);
        StartChecks.CreatablePath("--junit", parse.GetValue(junit)?.FullName);
        StartChecks.CreatablePath("--markdown", parse.GetValue(markdown)?.FullName);
        StartChecks.CreatablePath("--html", parse.GetValue(html)?.FullName);
    }

    private static List<string> Patterns(string[]? values) =>
        [.. (values ?? []).SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))];

    private static Ipv6Address? Address(string option, string? text)
    {
        if (text is null)
        {
            return null;
        }
        return Ipv6Address.TryParse(text, out var address) ? address : throw new ConfigException(option, 0, null, $"'{text}' is not an IPv6 address");
    }

    /// <summary>Runs the restart hook through /bin/sh; a non-zero exit fails the case that asked for it.</summary>
    private static async Task RunShell(string commandLine, TextWriter output, CancellationToken cancellation)
    {
        var start = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(commandLine);
        using var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start /bin/sh");
        await process.WaitForExitAsync(cancellation).ConfigureAwait(false);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"--restart-command exited with {process.ExitCode}");
        }
        await output.WriteLineAsync("target restarted").ConfigureAwait(false);
    }
}
