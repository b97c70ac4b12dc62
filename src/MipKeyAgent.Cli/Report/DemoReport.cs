using System.Globalization;
using MipKeyAgent.Cli.Replay;
using MipKeyAgent.Hosting;
using MipKeyAgent.Protocol;

namespace MipKeyAgent.Cli.Report;

/// <summary>
/// The demo's HTML report: its capture read back the way <c>mipkey replay</c> reads one (the observer
/// decrypts both directions with the keys learned from KEY-DIST; no engine re-run, since the demo's HA
/// restarts halfway), so the picture and the replay timeline come from the same rows.
/// </summary>
internal static class DemoReport
{
    public static ReplayReport Replay(string pcapPath, IReadOnlyList<MobileNodeProvisioning> nodes, uint vendorId)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        var provisioned = nodes.Select((p, i) => new ProvisionedNode("mn" + (i + 1).ToString(CultureInfo.InvariantCulture), p, 0)).ToArray();
        return CaptureReplay.Run(CaptureReplay.Read(pcapPath), provisioned, vendorId, homeAgent: null);
    }

    public static void Write(string htmlPath, string pcapPath, IReadOnlyList<MobileNodeProvisioning> nodes, uint vendorId, string title) =>
        LadderReportPage.Write(LadderReport.From(Replay(pcapPath, nodes, vendorId), title), htmlPath);
}
