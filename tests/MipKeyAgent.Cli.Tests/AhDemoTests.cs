using MipKeyAgent.Cli.Capture;
using MipKeyAgent.Cli.Demo;
using MipKeyAgent.Cli.Replay;
using MipKeyAgent.Esp;
using MipKeyAgent.TestSupport;
using MipKeyAgent.Transport;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Cli.Tests;

/// <summary><c>mipkey demo --variant ah</c>: suite 3 end to end in the simulated world (PROTOCOL.md section 9).</summary>
public sealed class AhDemoTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("mipkey-cli-ah-demo-").FullName;

    [Fact]
    public void ShortRun_VariantAh_ControlUnderAhDataUnderEspNothingUndecryptable()
    {
        var pcap = Path.Combine(_directory, "ah.pcap");
        var summary = DemoRunner.Run(new DemoSettings { Duration = TimeSpan.FromSeconds(90), Nodes = 2, Seed = 3, PcapPath = pcap, Suite = EspSuite.AhHmacSha256 },
            TestConsole.Create(new StringWriter()));

        Assert.Equal(0, summary.Data.Corrupted);
        Assert.True(summary.Data.Delivered > 100);
        Assert.True(summary.CapturedBindingUpdates >= 2 && summary.CapturedBindingAcknowledgements >= 2);
        Assert.All(summary.Nodes, n => Assert.True(n.Rekeys >= 2, $"{n.Name}: {n.Rekeys} keys"));
        var (ah, esp) = Protocols(pcap);
        Assert.Equal(summary.CapturedBindingUpdates + summary.CapturedBindingAcknowledgements, ah);
        Assert.Equal(summary.CapturedData, esp);
        EspCounterUniqueness.AssertNoReuse(pcap);
        // The capture reads back as replay reads it: every datagram opens under IK's or a learned generation's SA.
        using var observer = new CaptureObserver(summary.Provisioning, MipKey.DefaultVendorId);
        int control = 0;
        foreach (var record in CaptureReplay.Read(pcap))
        {
            var seen = observer.Observe(record.Timestamp, record.Datagram);
            Assert.True(seen.Verdict == CaptureVerdict.Ok, $"{seen}");
            control += seen.IsControl ? 1 : 0;
        }
        Assert.Equal(ah, control);
    }

    private static (int Ah, int Esp) Protocols(string pcap)
    {
        int ah = 0, esp = 0;
        Assert.True(CaptureFileReader.TryOpen(pcap, out var reader).IsOk);
        using (reader)
        {
            while (reader!.TryReadNext(out var record, out bool end).IsOk && !end)
            {
                Assert.True(Ipv6Datagram.TryParse(record.Data.Span, out var parsed).IsOk);
                ah += parsed.UpperProtocol == IpProtocol.AuthenticationHeader ? 1 : 0;
                esp += parsed.UpperProtocol == IpProtocol.Esp ? 1 : 0;
            }
        }
        return (ah, esp);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
