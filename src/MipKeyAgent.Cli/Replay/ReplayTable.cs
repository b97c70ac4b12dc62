using System.Globalization;
using MipKeyAgent.Cli.Capture;
using Spectre.Console;

namespace MipKeyAgent.Cli.Replay;

/// <summary>Prints a replay's timeline and anomalies with Spectre.Console.</summary>
internal static class ReplayTable
{
    public static void Write(IAnsiConsole console, ReplayReport report, string title)
    {
        ArgumentNullException.ThrowIfNull(console);
        ArgumentNullException.ThrowIfNull(report);
        var table = new Table().Title(Markup.Escape(title)).Border(TableBorder.Simple)
            .AddColumn(new TableColumn("time").RightAligned()).AddColumn("dir").AddColumn("node").AddColumn("message")
            .AddColumn("gen").AddColumn(new TableColumn("SPI").RightAligned()).AddColumn("verdict").AddColumn("engine");
        foreach (var row in report.Rows)
        {
            var verdict = CaptureReplay.VerdictText(row.Verdict);
            table.AddRow(
                Markup.Escape(row.Time.TotalSeconds.ToString("0.000", CultureInfo.InvariantCulture)),
                row.Direction switch { CaptureDirection.MnToHa => "MN->HA", CaptureDirection.HaToMn => "HA->MN", _ => "?" },
                Markup.Escape(row.Node),
                Markup.Escape(row.Message),
                Markup.Escape(row.Generation),
                row.Spi.ToString(CultureInfo.InvariantCulture),
                row.Verdict == CaptureVerdict.Ok ? "[green]ok[/]" : $"[red]{Markup.Escape(verdict)}[/]",
                row.Engine.StartsWith("differs", StringComparison.Ordinal) || row.Engine.StartsWith("not sent", StringComparison.Ordinal)
                    ? $"[yellow]{Markup.Escape(row.Engine)}[/]" : Markup.Escape(row.Engine));
        }
        console.Write(table);
        console.MarkupLine(Markup.Escape(
            $"{report.Rows.Count} datagrams, {report.SecurityAssociations.Count} SAs known, engine answers {report.EngineAnswers}, " +
            $"matching the capture {report.MatchedAnswers}" +
            (report.OutsideProtocol > 0 ? $"; {report.OutsideProtocol} datagrams outside the protocol passed over (Neighbor Discovery, MLD, ICMPv6 errors, ...)" : "")));
        if (report.Anomalies.Count == 0)
        {
            console.MarkupLine("[green]no anomalies[/]");
            return;
        }
        console.MarkupLine($"[red]{report.Anomalies.Count} anomalies[/]");
        foreach (var anomaly in report.Anomalies)
        {
            var at = anomaly.Time is { } t ? t.TotalSeconds.ToString("0.000", CultureInfo.InvariantCulture) + " s " : "";
            console.MarkupLine(Markup.Escape($"  {at}{anomaly.Node}: {anomaly.What}"));
        }
    }
}
