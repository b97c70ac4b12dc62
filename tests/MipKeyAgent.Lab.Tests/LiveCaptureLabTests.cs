using System.Globalization;
using MipKeyAgent.Transport;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Lab.Tests;

/// <summary>
/// <c>mipkey capture IFACE</c> as a process: it watches one end of a veth pair through libpcap while
/// <c>mipkey replay --live</c> puts a golden capture onto the other end, and prints the exchanges decrypted
/// with the keys it learns from KEY-DIST (IPv6 is disabled on both ends, so nothing else is on the link).
/// Needs root; fails without it.
/// </summary>
public sealed class LiveCaptureLabTests : IAsyncLifetime
{
    private const string Capture = "node-timer-update";

    private readonly LabScratch _lab = new("lc");

    public Task InitializeAsync() => _lab.InitializeAsync();

    public Task DisposeAsync() => _lab.DisposeAsync();

    [Fact]
    public async Task GoldenCaptureReplayedOntoVeth_CapturedOnThePeer_EveryDatagramDecryptedAndWritten()
    {
        var (sender, senderEnd, receiver, receiverEnd) = _lab.QuietVethPair();
        var pcap = Path.Combine(AppContext.BaseDirectory, "captures", Capture + ".pcap");
        var conf = _lab.PrivateFile("replay.conf", File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "captures", Capture + ".conf")));
        int expected = CountRecords(pcap);
        var written = _lab.File("seen.pcap");

        var capture = _lab.Track(AgentProcess.Start(receiver, AgentProcess.Dotnet, AgentProcess.MipkeyDll, "capture", receiverEnd, "-c", conf,
            "--count", expected.ToString(CultureInfo.InvariantCulture), "-w", written));
        await LabScratch.WaitAsync(() => Task.FromResult(capture.Output.Contains("capturing on", StringComparison.Ordinal) || capture.HasExited),
            TimeSpan.FromSeconds(30), () => "the capture did not start: " + capture.Output);
        Assert.False(capture.HasExited, capture.Output);

        var (code, output) = await Shell.RunAsync("ip", ["netns", "exec", sender, AgentProcess.Dotnet, AgentProcess.MipkeyDll, "replay", pcap, "-c", conf,
            "--live", senderEnd], TimeSpan.FromSeconds(60), check: false);
        Assert.True(code == 0, output);
        await LabScratch.WaitAsync(() => Task.FromResult(capture.HasExited), TimeSpan.FromSeconds(30), () => "the capture did not finish: " + capture.Output);

        var lines = capture.Output.Split('\n');
        Assert.Contains($"{expected} IPv6 datagrams, {expected} frames", capture.Output, StringComparison.Ordinal);
        var timeline = lines.Where(l => l.Contains(" spi ", StringComparison.Ordinal)).ToList();
        Assert.Equal(expected, timeline.Count);
        Assert.All(timeline, l => Assert.EndsWith(" ok", l.TrimEnd(), StringComparison.Ordinal));
        Assert.Contains(timeline, l => l.Contains("MN>HA", StringComparison.Ordinal) && l.Contains("KEY-UPDATE-REQ g1", StringComparison.Ordinal));
        Assert.Contains(timeline, l => l.Contains("HA>MN", StringComparison.Ordinal) && l.Contains("KEY-DIST g2", StringComparison.Ordinal));
        Assert.Equal(expected, CountRecords(written));
    }

    private static int CountRecords(string path)
    {
        Assert.True(CaptureFileReader.TryOpen(path, out var reader).IsOk, path);
        using (reader)
        {
            int count = 0;
            while (reader!.TryReadNext(out _, out bool end).IsOk && !end)
            {
                count++;
            }
            return count;
        }
    }
}
