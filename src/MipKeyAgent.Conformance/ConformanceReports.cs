using System.Globalization;
using System.Text;
using System.Xml.Linq;
using MipKeyAgent.Esp;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Conformance;

/// <summary>The run's reports: summary table, JUnit XML, Markdown, and one pcap with its tshark key file per case.</summary>
internal static class ConformanceReports
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    public static string VerdictText(Verdict verdict) => verdict switch
    {
        Verdict.Pass => "PASS",
        Verdict.Fail => "FAIL",
        _ => "INCONCLUSIVE",
    };

    /// <summary>One line per case as it finishes (the live progress line prints these).</summary>
    public static string ProgressLine(CaseResult result, int done, int total) =>
        string.Create(Invariant, $"[{done,3}/{total}] {VerdictText(result.Verdict),-12} {result.Case.Id,-14} {result.Duration.TotalSeconds,5:F1} s  {result.Case.Title}")
        + (result.Verdict == Verdict.Pass ? "" : $"\n                {Explain(result)}");

    public static string Explain(CaseResult result) => result.Verdict switch
    {
        Verdict.Fail => $"expected {result.Expected}; observed {result.Message}",
        Verdict.Inconclusive => result.Message,
        _ => "",
    };

    public static string Summary(IReadOnlyList<CaseResult> results, TimeSpan elapsed)
    {
        var text = new StringBuilder();
        text.Append(Invariant, $"{"case",-14} {"verdict",-12} {"req",-3} clause\n");
        foreach (var result in results)
        {
            text.Append(Invariant, $"{result.Case.Id,-14} {VerdictText(result.Verdict),-12} {(result.Case.Required ? "yes" : "no"),-3} {result.Case.Clause}\n");
        }
        int pass = results.Count(r => r.Verdict == Verdict.Pass);
        int fail = results.Count(r => r.Verdict == Verdict.Fail);
        int inconclusive = results.Count(r => r.Verdict == Verdict.Inconclusive);
        int failing = results.Count(r => r.FailsRun);
        text.Append(Invariant, $"\n{results.Count} cases: {pass} passed, {fail} failed, {inconclusive} inconclusive in {elapsed.TotalSeconds:F1} s; ");
        text.Append(failing == 0 ? "every required case passed\n" : $"{failing} required case(s) did not pass\n");
        return text.ToString();
    }

    public static XDocument JUnit(IReadOnlyList<CaseResult> results, string suiteName, TimeSpan elapsed)
    {
        var suite = new XElement("testsuite",
            new XAttribute("name", suiteName),
            new XAttribute("tests", results.Count),
            new XAttribute("failures", results.Count(r => r.Verdict == Verdict.Fail)),
            new XAttribute("skipped", results.Count(r => r.Verdict == Verdict.Inconclusive)),
            new XAttribute("time", elapsed.TotalSeconds.ToString("F3", Invariant)));
        foreach (var result in results)
        {
            var element = new XElement("testcase",
                new XAttribute("classname", $"{suiteName}.{result.Case.Id[..result.Case.Id.LastIndexOf('-')]}"),
                new XAttribute("name", $"{result.Case.Id} {result.Case.Title}"),
                new XAttribute("time", result.Duration.TotalSeconds.ToString("F3", Invariant)));
            if (result.Verdict == Verdict.Fail)
            {
                element.Add(new XElement("failure", new XAttribute("message", Explain(result)), EvidenceText(result)));
            }
            else if (result.Verdict == Verdict.Inconclusive)
            {
                element.Add(new XElement("skipped", new XAttribute("message", result.Message)));
            }
            element.Add(new XElement("system-out", $"clause: {result.Case.Clause}\n{EvidenceText(result)}"));
            suite.Add(element);
        }
        return new XDocument(new XElement("testsuites", suite));
    }

    public static string Markdown(IReadOnlyList<CaseResult> results, string title, TimeSpan elapsed)
    {
        var text = new StringBuilder();
        text.Append(Invariant, $"# {title}\n\n");
        text.Append("| case | verdict | required | clause | title |\n|---|---|---|---|---|\n");
        foreach (var result in results)
        {
            text.Append(Invariant, $"| {result.Case.Id} | {VerdictText(result.Verdict)} | {(result.Case.Required ? "yes" : "no")} | {result.Case.Clause} | {result.Case.Title} |\n");
        }
        text.Append('\n').Append(Summary(results, elapsed).Split("\n\n")[^1]).Append('\n');
        foreach (var result in results.Where(r => r.Verdict != Verdict.Pass))
        {
            text.Append(Invariant, $"## {result.Case.Id}: {VerdictText(result.Verdict)}\n\n{result.Case.Title} ({result.Case.Clause})\n\n");
            text.Append("Steps:\n\n");
            foreach (var step in result.Case.Steps)
            {
                text.Append("1. ").Append(step).Append('\n');
            }
            text.Append(Invariant, $"\n**{Explain(result)}**\n\n```\n{EvidenceText(result)}```\n\n");
        }
        return text.ToString();
    }

    /// <summary>The evidence as lines: time from the case's start, direction, what the tester read.</summary>
    public static string EvidenceText(CaseResult result)
    {
        var text = new StringBuilder();
        var start = result.Evidence.Count > 0 ? result.Evidence[0].Time : DateTimeOffset.UtcNow;
        foreach (var entry in result.Evidence)
        {
            string arrow = entry.Direction switch
            {
                EvidenceDirection.ToTarget => "tester -> target",
                EvidenceDirection.FromTarget => "target -> tester",
                _ => "note            ",
            };
            text.Append(Invariant, $"{(entry.Time - start).TotalMilliseconds,8:F1} ms  {arrow}  {entry.Text}\n");
        }
        return text.ToString();
    }

    /// <summary>Writes <c>ID.pcap</c> (every datagram of the case, raw IPv6) and <c>ID.esp_sa</c> (its SAs as tshark's esp_sa table) into <paramref name="directory"/>.</summary>
    public static void WriteCaseCapture(string directory, CaseResult result)
    {
        Directory.CreateDirectory(directory);
        using (var stream = File.Create(Path.Combine(directory, result.Case.Id + ".pcap")))
        using (var writer = new PcapWriter(stream, PcapLinkType.Ipv6))
        {
            foreach (var entry in result.Evidence.Where(e => e.Datagram is not null))
            {
                writer.Write(entry.Time, entry.Datagram);
            }
        }
        var table = new StringBuilder("# ESP SAs the tester knew in this case (throwaway test keys unless the target's provisioning is real)\n");
        foreach (var sa in result.SecurityAssociations)
        {
            table.Append(WiresharkEspSa.Record(sa)).Append('\n');
        }
        File.WriteAllText(Path.Combine(directory, result.Case.Id + ".esp_sa"), table.ToString());
    }
}
