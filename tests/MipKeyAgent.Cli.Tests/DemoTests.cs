using System.Diagnostics;
using MipKeyAgent.Cli.Commands;
using MipKeyAgent.Cli.Demo;
using MipKeyAgent.Esp;
using MipKeyAgent.Transport;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Cli.Tests;

public sealed class DemoTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("mipkey-cli-demo-").FullName;

    private (DemoSummary Summary, string Output) RunDemo(DemoSettings settings)
    {
        var writer = new StringWriter();
        var summary = DemoRunner.Run(settings, TestConsole.Create(writer));
        return (summary, writer.ToString());
    }

    /// <summary>Opens every control datagram of the capture with the recovered SAs and counts Mobility Header types.</summary>
    private static Dictionary<MobilityHeaderType, int> MobilityTypes(string pcap, IReadOnlyList<SecurityAssociationKeys> sas)
    {
        var byspi = sas.ToDictionary(s => s.Spi, s => new SecurityAssociation(s.Spi, s.Suite, s.KeyMaterial, replayWindowSize: 1024));
        var types = new Dictionary<MobilityHeaderType, int>();
        using var stream = File.OpenRead(pcap);
        Assert.True(CaptureFileReader.TryOpen(stream, out var opened).IsOk);
        using (var reader = opened!)
        {
            var plain = new byte[70_000];
            while (reader.TryReadNext(out var record, out bool end).IsOk && !end)
            {
                Assert.Equal(PcapLinkType.Ipv6, record.LinkType);
                var bytes = record.Data.Span;
                Assert.True(Ipv6Datagram.TryParse(bytes, out var parsed).IsOk);
                Assert.Equal(IpProtocol.Esp, parsed.UpperProtocol);
                var esp = parsed.GetUpper(bytes);
                Assert.True(SecurityAssociation.TryPeekSpi(esp, out uint spi, out _).IsOk);
                Assert.True(byspi.TryGetValue(spi, out var sa), $"SPI 0x{spi:x8} not recovered");
                Assert.True(sa.Open(esp, plain, out int length, out byte next).IsOk);
                if (next == IpProtocol.Mobility)
                {
                    Assert.True(MobilityHeader.TryParse(plain.AsSpan(0, length), out var mh).IsOk);
                    types[mh.Type] = types.GetValueOrDefault(mh.Type) + 1;
                }
                else
                {
                    Assert.Equal(IpProtocol.Ipv6, next);
                }
            }
        }
        foreach (var sa in byspi.Values)
        {
            sa.Dispose();
        }
        return types;
    }

    [Fact]
    public void ShortRun_Demo_CaptureHoldsBindingUpdatesAndAcknowledgementsAllDecryptable()
    {
        var pcap = Path.Combine(_directory, "demo.pcap");
        var (summary, output) = RunDemo(new DemoSettings { Duration = TimeSpan.FromSeconds(70), Nodes = 2, RekeyInterval = TimeSpan.FromSeconds(15), PcapPath = pcap });

        Assert.Contains("InitAnswered", output, StringComparison.Ordinal);
        Assert.Contains("KeyInstalled", output, StringComparison.Ordinal);
        Assert.Contains("UpdateIssued", output, StringComparison.Ordinal);
        Assert.Contains("Crashed", output, StringComparison.Ordinal);
        Assert.Contains($"WIRESHARK_CONFIG_DIR={summary.WiresharkDirectory} tshark -r {pcap}", output, StringComparison.Ordinal);
        Assert.True(summary.Nodes.All(n => n.Rekeys >= 3), string.Join(", ", summary.Nodes.Select(n => n.Rekeys)));
        Assert.Equal(0, summary.Data.FailedToDecrypt);
        Assert.True(summary.Data.Delivered > 100);

        {
            var types = MobilityTypes(pcap, summary.SecurityAssociations);
            Assert.True(types.GetValueOrDefault(MobilityHeaderType.BindingUpdate) > 0);
            Assert.True(types.GetValueOrDefault(MobilityHeaderType.BindingAcknowledgement) > 0);
            Assert.Equal(summary.CapturedBindingUpdates, types[MobilityHeaderType.BindingUpdate]);
            Assert.Equal(summary.CapturedBindingAcknowledgements,
                types[MobilityHeaderType.BindingAcknowledgement] + types.GetValueOrDefault(MobilityHeaderType.BindingRefreshRequest));
        }
    }

    [Fact]
    public async Task WrittenKeys_Demo_TsharkDecryptsEveryBindingUpdate()
    {
        var pcap = Path.Combine(_directory, "demo.pcap");
        var (summary, _) = RunDemo(new DemoSettings { Duration = TimeSpan.FromSeconds(40), Nodes = 2, RekeyInterval = TimeSpan.FromSeconds(10), PcapPath = pcap });
        const string tshark = "/usr/bin/tshark";
        Assert.True(File.Exists(tshark), "tshark is missing: run ./test.sh, which installs Debian's tshark");
        var psi = new ProcessStartInfo(tshark) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-r", pcap, "-T", "fields", "-e", "mip6.mhtype", "-e", "esp.icv_good" })
        {
            psi.ArgumentList.Add(a);
        }
        psi.Environment["WIRESHARK_CONFIG_DIR"] = summary.WiresharkDirectory;
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        Assert.True(process.ExitCode == 0, await stderr);
        var rows = (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(r => r.Split('\t')).ToArray();
        Assert.Equal(summary.CapturedBindingUpdates, rows.Count(r => r[0] == "5"));
        Assert.Contains(rows, r => r[0] == "6");
        // Every ESP packet (control and data) authenticated under the recovered keys.
        Assert.All(rows, r => Assert.Equal("1", r[1]));
    }

    [Fact]
    public void CommandLine_Demo_RunsAndWritesPcap()
    {
        var pcap = Path.Combine(_directory, "cli.pcap");
        var writer = new StringWriter();
        var root = CliApp.Build(() => TestConsole.Create(writer));
        int code = root.Parse(["demo", "--duration", "30s", "--nodes", "1", "--seed", "5", "--ba-loss", "0", "--pcap", pcap]).Invoke();
        Assert.Equal(0, code);
        Assert.True(new FileInfo(pcap).Length > 24);
        Assert.True(File.Exists(Path.Combine(_directory, "cli.wireshark", "esp_sa")));
        Assert.Contains("seed 5", writer.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void SameSeed_Demo_SameCapture()
    {
        var first = Path.Combine(_directory, "a.pcap");
        var second = Path.Combine(_directory, "b.pcap");
        RunDemo(new DemoSettings { Duration = TimeSpan.FromSeconds(30), Nodes = 2, Seed = 9, PcapPath = first });
        RunDemo(new DemoSettings { Duration = TimeSpan.FromSeconds(30), Nodes = 2, Seed = 9, PcapPath = second });
        Assert.Equal(File.ReadAllBytes(first), File.ReadAllBytes(second));
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
