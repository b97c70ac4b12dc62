using MipKeyAgent.Cli.Replay;
using MipKeyAgent.Transport;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Cli.Tests.Replay;

/// <summary>
/// One lab run recorded three ways at once by lab/record-captures.sh (scenario <c>tcpdump</c>): the HA's own
/// <c>--capture</c> (raw IPv6), <c>tcpdump -i any</c> in the HA's namespace (Linux cooked v2) and <c>tcpdump -i</c> on the
/// HA's veth (Ethernet). The tcpdump files also hold what the kernel put on the link (Neighbor Discovery, MLD, its
/// ICMPv6 Parameter Problems for the Home Address option and the type 2 routing header it does not know): the replay
/// passes those over and counts them, and gives the same timeline as the agent's own capture.
/// </summary>
public sealed class TcpdumpCaptureTests
{
    [Theory]
    [InlineData("lab-tcpdump-any", PcapLinkType.LinuxSll2)]
    [InlineData("lab-tcpdump-veth", PcapLinkType.Ethernet)]
    public void TcpdumpRecording_ReplayedAsHomeAgent_SameTimelineAsTheAgentsOwnCapture(string name, PcapLinkType linkType)
    {
        Assert.True(CaptureFileReader.TryOpen(CaptureFiles.Pcap(name), out var reader).IsOk);
        using (reader)
        {
            Assert.True(reader!.TryReadNext(out var first, out bool end).IsOk && !end);
            Assert.Equal(linkType, first.LinkType);
        }
        var own = CaptureFiles.Replay("lab-tcpdump");
        var recorded = CaptureFiles.Replay("lab-tcpdump", CaptureReplay.Read(CaptureFiles.Pcap(name)));

        Assert.Equal(0, own.OutsideProtocol);
        Assert.Equal(26, recorded.OutsideProtocol);
        Assert.Equal(Columns(own), Columns(recorded));
        Assert.Empty(recorded.Anomalies);
        Assert.Equal((3, 3), (recorded.EngineAnswers, recorded.MatchedAnswers));
        // The same datagrams, stamped by another observer on the same host: within a few milliseconds.
        var offsets = own.Rows.Zip(recorded.Rows, (a, b) => Math.Abs((a.Time - b.Time).TotalMilliseconds));
        Assert.All(offsets, ms => Assert.True(ms < 20, $"{ms} ms"));
    }

    [Fact]
    public void AgentsOwnCapture_ReplayedAsHomeAgent_InitAndTwoUpdatesWithoutAnomalies()
    {
        var report = CaptureFiles.Replay("lab-tcpdump");

        Assert.Equal(16, report.Rows.Count);
        Assert.Empty(report.Anomalies);
        Assert.Equal(
            ["BU seq 0 KEY-INIT-REQ epoch 1", "BA seq 0 status 0 KEY-DIST g1", "BU seq 1 KEY-UPDATE-REQ g1", "BA seq 1 status 0 KEY-DIST g2",
                "BU seq 2 KEY-UPDATE-REQ g2", "BA seq 2 status 0 KEY-DIST g3"],
            report.Rows.Where(r => r.IsControlMessage()).Select(r => r.Message.Split(" spi ")[0]).ToArray());
    }

    private static string[] Columns(ReplayReport report) =>
        [.. report.Rows.Select(r => $"{r.Direction} {r.Node} {r.Message} {r.Generation} {r.Spi} {r.Verdict} {r.Engine}")];
}
