using MipKeyAgent.Cli.Demo;
using MipKeyAgent.Protocol;
using MipKeyAgent.TestSupport;
using MipKeyAgent.Transport;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Cli.Tests;

/// <summary><c>mipkey demo --variant udp</c>: the client/server carriage end to end in the simulated world (PROTOCOL.md section 11).</summary>
public sealed class UdpDemoTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("mipkey-cli-udp-demo-").FullName;

    [Fact]
    public void ShortRun_VariantUdp_EverythingFromNatEndpointsNothingUndecryptable()
    {
        var pcap = Path.Combine(_directory, "udp.pcap");
        var summary = DemoRunner.Run(new DemoSettings { Duration = TimeSpan.FromSeconds(90), Nodes = 2, Seed = 3, PcapPath = pcap, Carriage = Carriage.Udp },
            TestConsole.Create(new StringWriter()));

        Assert.Equal(0, summary.Data.Corrupted);
        Assert.True(summary.Data.Delivered > 100);
        Assert.All(summary.Nodes, n => Assert.True(n.Rekeys >= 2, $"{n.Name}: {n.Rekeys} keys"));
        EspCounterUniqueness.AssertNoReuse(pcap);
        int fromEndpoints = 0, withHomeAddressOption = 0;
        Assert.True(CaptureFileReader.TryOpen(pcap, out var reader).IsOk);
        using (reader)
        {
            while (reader!.TryReadNext(out var record, out bool end).IsOk && !end)
            {
                Assert.True(Ipv6Datagram.TryParse(record.Data.Span, out var parsed).IsOk);
                fromEndpoints += UdpEncapsulation.IsEndpointName(parsed.Header.Source) ? 1 : 0;
                withHomeAddressOption += parsed.HomeAddress is null ? 0 : 1;
            }
        }
        Assert.True(fromEndpoints > 100, $"{fromEndpoints} datagrams from NAT endpoints");
        Assert.Equal(0, withHomeAddressOption);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
