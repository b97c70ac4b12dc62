using System.CommandLine;
using MipKeyAgent.Cli.Capture;
using MipKeyAgent.Cli.Config;
using MipKeyAgent.Cli.Replay;
using MipKeyAgent.Transport;
using MipKeyAgent.Wire;
using Spectre.Console;

namespace MipKeyAgent.Cli.Commands;

/// <summary><c>mipkey capture IFACE</c>: a live interface through libpcap, decrypted with a home agent's provisioning, as a timeline.</summary>
internal static class CaptureCommand
{
    public static Command Create(Func<IAnsiConsole> console)
    {
        var iface = new Argument<string>("interface") { Description = "The interface to watch (a veth end, a NIC, a tap, or any: every interface, Linux cooked headers)." };
        var config = new Option<FileInfo>("--config", "-c") { Description = "The home agent's provisioning file holding the initialization keys (mode 0600).", Required = true };
        var filter = new Option<string>("--filter")
        {
            Description = "BPF filter (pcap-filter(7)) applied in the kernel before anything reaches mipkey.",
            DefaultValueFactory = _ => "ip6",
        };
        var count = new Option<long?>("--count") { Description = "Stop after this many IPv6 datagrams (default: until interrupted)." };
        var write = new Option<FileInfo?>("--write", "-w") { Description = "Also write the captured frames to this pcap (the interface's link type)." };
        var command = new Command("capture",
            "Watches a live interface through libpcap and prints each IPv6 datagram as it passes, decrypted with the keys learned from " +
            "KEY-DIST (unwrapped under the IK-derived KEK): time, direction, node, message, generation, SPI, verdict. Datagrams outside the protocol (Neighbor Discovery, MLD, ICMPv6 errors) are passed over and counted. Needs CAP_NET_RAW.\n\n" +
            "Examples:\n" +
            "  sudo mipkey capture veth-ha -c ha.conf\n" +
            "  sudo mipkey capture any -c ha.conf --filter 'ip6 and not icmp6' --count 100 -w seen.pcap")
        {
            iface, config, filter, count, write,
        };
        command.SetAction(async (parse, cancellation) =>
        {
            var configPath = parse.GetValue(config)!.FullName;
            StartChecks.ReadableFile("--config", configPath);
            StartChecks.CreatablePath("--write", parse.GetValue(write)?.FullName);
            var interfaceName = parse.GetValue(iface)!;
            if (interfaceName != "any")
            {
                StartChecks.InterfaceName("interface", interfaceName);
            }
            var ha = HomeAgentConfig.Load(configPath);
            using var capture = LiveCapture.Open(interfaceName, parse.GetValue(filter));
            var writePath = parse.GetValue(write)?.FullName;
            using var writer = writePath is null ? null : new PcapWriter(File.Create(writePath), capture.LinkType);
            var screen = console();
            screen.MarkupLine(Markup.Escape($"capturing on {capture.InterfaceName} (link type {(uint)capture.LinkType}), filter '{parse.GetValue(filter)}'"));
            var (seen, outside) = await Task.Run(() => Watch(capture, ha, writer, parse.GetValue(count), screen, cancellation), CancellationToken.None).ConfigureAwait(false);
            screen.MarkupLine(Markup.Escape($"{seen} IPv6 datagrams, {capture.Captured} frames" +
                (outside > 0 ? $"; {outside} outside the protocol passed over (Neighbor Discovery, MLD, ICMPv6 errors, ...)" : "")));
            return 0;
        });
        return command;
    }

    private static (long Datagrams, long Outside) Watch(LiveCapture capture, HomeAgentConfig ha, PcapWriter? writer, long? limit, IAnsiConsole console, CancellationToken cancellation)
    {
        var names = ha.Nodes.ToDictionary(n => n.Provisioning.HomeAddress, n => n.Name);
        using var observer = new CaptureObserver([.. ha.Nodes.Select(n => n.Provisioning)], ha.VendorId, ha.Address);
        DateTimeOffset? start = null;
        long datagrams = 0;
        long outside = 0;
        while (!cancellation.IsCancellationRequested && (limit is null || datagrams < limit))
        {
            if (!capture.TryReadNext(out var record))
            {
                continue;
            }
            writer?.Write(record.Timestamp, record.Data.Span);
            if (!PcapReplayTransport.TryGetIpv6Datagram(record, out var datagram))
            {
                continue;
            }
            datagrams++;
            if (CaptureObserver.IsOutsideProtocol(datagram.Span))
            {
                outside++;
                continue;
            }
            start ??= record.Timestamp;
            var row = observer.Observe(record.Timestamp, datagram.Span);
            var node = row.HomeAddress is { } h ? names.GetValueOrDefault(h, h.ToString()) : "?";
            console.WriteLine(LiveLine(record.Timestamp - start.Value, row, node));
        }
        writer?.Flush();
        return (datagrams, outside);
    }

    /// <summary>One timeline line: seconds since the first datagram, direction, node, message, generation, SPI, verdict.</summary>
    internal static string LiveLine(TimeSpan time, ObservedDatagram row, string node) =>
        $"{time.TotalSeconds,9:0.000}  {Direction(row.Direction),-5} {node,-12} {row.Message,-44} {row.Generation,-4} spi {row.Spi,-10} {CaptureReplay.VerdictText(row.Verdict)}";

    private static string Direction(CaptureDirection direction) => direction switch
    {
        CaptureDirection.MnToHa => "MN>HA",
        CaptureDirection.HaToMn => "HA>MN",
        _ => "?",
    };
}
