using MipKeyAgent.Cli.Replay;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Cli.Tests.Replay;

/// <summary>
/// <c>mipkey replay</c> over the link types lab captures come in: the same golden capture rewritten behind
/// each link header gives the same datagrams, times and timeline as its raw-IPv6 form.
/// </summary>
public sealed class LinkTypeReplayTests : IDisposable
{
    private const string Golden = "many-nodes";
    private readonly string _directory = Directory.CreateTempSubdirectory("mipkey-linktypes-").FullName;

    public static TheoryData<PcapLinkType, bool, bool> Variants => new()
    {
        { PcapLinkType.Ethernet, false, false },
        { PcapLinkType.Ethernet, true, false },   // 802.1Q tag
        { PcapLinkType.Raw, false, false },
        { PcapLinkType.LinuxSll, false, false },
        { PcapLinkType.Ipv6, false, false },
        { PcapLinkType.LinuxSll2, false, false },
        { PcapLinkType.Null, false, false },
        { PcapLinkType.Ethernet, false, true },   // pcapng, two interfaces
        { PcapLinkType.LinuxSll, false, true },
        { PcapLinkType.Ipv6, false, true },
        { PcapLinkType.LinuxSll2, false, true },
        { PcapLinkType.Null, false, true },
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void Replay_GoldenCaptureInLinkType_SameTimelineAsRawIpv6(PcapLinkType linkType, bool vlan, bool pcapng)
    {
        var raw = CaptureReplay.Read(CaptureFiles.Pcap(Golden));
        string path = Path.Combine(_directory, $"{linkType}-{vlan}.{(pcapng ? "pcapng" : "pcap")}");
        if (pcapng)
        {
            LinkTypeVariants.WritePcapNgTwoInterfaces(path, raw, linkType);
        }
        else
        {
            LinkTypeVariants.WriteClassic(path, raw, linkType, vlan);
        }

        var variant = CaptureReplay.Read(path);

        Assert.Equal(raw.Count, variant.Count);
        for (int i = 0; i < raw.Count; i++)
        {
            Assert.Equal(raw[i].Timestamp, variant[i].Timestamp);
            Assert.Equal(raw[i].Datagram, variant[i].Datagram);
        }

        var expected = CaptureFiles.Replay(Golden, raw);
        var actual = CaptureFiles.Replay(Golden, variant);
        Assert.NotEmpty(expected.Rows);
        Assert.Equal(expected.Rows, actual.Rows);
        Assert.Equal(expected.Anomalies, actual.Anomalies);
        Assert.Equal(expected.MatchedAnswers, actual.MatchedAnswers);
    }

    [Fact]
    public void Read_EthernetCaptureWithIpv4AndArp_OnlyTheIpv6DatagramsAreReplayed()
    {
        var raw = CaptureReplay.Read(CaptureFiles.Pcap(Golden));
        string path = Path.Combine(_directory, "mixed.pcap");
        using (var writer = new PcapWriter(File.Create(path), PcapLinkType.Ethernet))
        {
            var arp = Convert.FromHexString("ffffffffffff020000000001" + "0806" + "0001080006040001");
            var ipv4 = Convert.FromHexString("ffffffffffff020000000001" + "0800" + "4500001c");
            foreach (var record in raw)
            {
                writer.Write(record.Timestamp, arp);
                writer.Write(record.Timestamp, LinkTypeVariants.Frame(PcapLinkType.Ethernet, record.Datagram, 0));
                writer.Write(record.Timestamp, ipv4);
            }
        }

        var variant = CaptureReplay.Read(path);
        Assert.Equal(raw.Select(r => Convert.ToHexString(r.Datagram)), variant.Select(r => Convert.ToHexString(r.Datagram)));
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
