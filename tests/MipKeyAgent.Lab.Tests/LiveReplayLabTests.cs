using MipKeyAgent.Transport;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Lab.Tests;

/// <summary>
/// <c>mipkey replay CAPTURE --live IFACE</c> as a process: a golden capture replayed out of one end
/// of a veth pair, the other end captured with kernel receive times (lab/frame_capture.py). Both ends
/// have IPv6 disabled, so nothing but the replay is on the link. Needs root; fails without it.
/// </summary>
public sealed class LiveReplayLabTests : IAsyncLifetime
{
    private const string Capture = "node-timer-update";
    private const string DestinationMac = "02:00:5e:10:00:02";

    private readonly LabScratch _lab = new("lr");

    public Task InitializeAsync() => _lab.InitializeAsync();

    public Task DisposeAsync() => _lab.DisposeAsync();

    [Fact]
    public async Task GoldenCapture_ReplayedLiveOntoVeth_SameDatagramsInOrderNeverAheadOfCapturedPace()
    {
        var (sender, senderEnd, receiver, receiverEnd) = _lab.QuietVethPair();

        var pcap = Path.Combine(AppContext.BaseDirectory, "captures", Capture + ".pcap");
        var conf = _lab.PrivateFile("replay.conf", File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "captures", Capture + ".conf")));
        var expected = ReadIpv6(pcap);
        Assert.True(expected.Count >= 10, $"{Capture} has {expected.Count} datagrams");
        var received = _lab.File("received.pcap");

        var capture = _lab.Track(AgentProcess.Start(receiver, Shell.Python, Path.Combine(AppContext.BaseDirectory, "lab", "frame_capture.py"),
            receiverEnd, expected.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), received));
        await LabScratch.WaitAsync(() => Task.FromResult(capture.Output.Contains("ready", StringComparison.Ordinal) || capture.HasExited),
            TimeSpan.FromSeconds(30), () => "the capture did not start: " + capture.Output);

        var (code, output) = await Shell.RunAsync("ip", ["netns", "exec", sender, AgentProcess.Dotnet, AgentProcess.MipkeyDll, "replay", pcap, "-c", conf,
            "--live", senderEnd, "--live-mac", DestinationMac], TimeSpan.FromSeconds(60), check: false);
        Assert.True(code == 0, output);
        Assert.Contains($"sent {expected.Count} datagrams on {senderEnd}", output, StringComparison.Ordinal);
        await LabScratch.WaitAsync(() => Task.FromResult(capture.HasExited), TimeSpan.FromSeconds(30), () => "the capture did not finish: " + capture.Output);
        Assert.Contains($"captured {expected.Count}", capture.Output, StringComparison.Ordinal);

        var frames = ReadFrames(received);
        Assert.Equal(expected.Count, frames.Count);
        for (int i = 0; i < frames.Count; i++)
        {
            var frame = frames[i].Data.Span;
            Assert.Equal(DestinationMac, string.Join(':', frame[..6].ToArray().Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture))));
            Assert.True(Ethernet.TryGetIpv6(frame, out int offset).IsOk, $"frame {i} is not IPv6");
            Assert.Equal(Convert.ToHexString(expected[i].Datagram), Convert.ToHexString(frame[offset..].ToArray()));
        }

        // The pace: each frame arrives no earlier after the first than it was captured after the first
        // (so the replay lasts at least the capture's span, and every captured pause is kept in order).
        // Only a lower bound: how much later a busy machine sends is not the test's business. The slack
        // is the capture file's resolution (1 us).
        var resolution = TimeSpan.FromTicks(TimeSpan.TicksPerMicrosecond);
        for (int i = 1; i < frames.Count; i++)
        {
            var captured = expected[i].Timestamp - expected[0].Timestamp;
            var replayed = frames[i].Timestamp - frames[0].Timestamp;
            Assert.True(replayed >= captured - resolution, $"frame {i} arrived {replayed.TotalMilliseconds:0.000} ms after the first; captured {captured.TotalMilliseconds:0.000} ms");
            Assert.True(frames[i].Timestamp >= frames[i - 1].Timestamp, $"frame {i} arrived before frame {i - 1}");
        }
    }

    private static List<(DateTimeOffset Timestamp, byte[] Datagram)> ReadIpv6(string path) =>
        [.. ReadFrames(path).Select(r => PcapReplayTransport.TryGetIpv6Datagram(r, out var d) ? (r.Timestamp, d.ToArray()) : throw new InvalidDataException($"{path}: not IPv6"))];

    private static List<PcapRecord> ReadFrames(string path)
    {
        using var stream = File.OpenRead(path);
        Assert.True(CaptureFileReader.TryOpen(stream, out var reader).IsOk, path);
        using (reader)
        {
            var records = new List<PcapRecord>();
            while (true)
            {
                Assert.True(reader!.TryReadNext(out var record, out bool end).IsOk, path);
                if (end)
                {
                    return records;
                }

                records.Add(record);
            }
        }
    }
}
