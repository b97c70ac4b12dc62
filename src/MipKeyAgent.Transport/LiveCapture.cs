using MipKeyAgent.Transport.Internal;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Transport;

/// <summary>
/// Frames from a live interface through libpcap with a BPF filter (pcap-filter(7)), for watching a
/// link as it runs: <c>mipkey capture IFACE</c>. Any interface libpcap opens, including <c>any</c>
/// (Linux cooked headers); <see cref="LinkLayer.TryGetIpv6"/> finds the datagrams. Needs CAP_NET_RAW.
/// </summary>
public sealed class LiveCapture : IDisposable
{
    private readonly LibpcapInterface _interface;
    private readonly byte[] _buffer = new byte[65535];

    private LiveCapture(LibpcapInterface device) => _interface = device;

    public string InterfaceName => _interface.Name;

    /// <summary>The interface's link type as libpcap reports it.</summary>
    public PcapLinkType LinkType => _interface.LinkType;

    /// <summary>Frames read so far.</summary>
    public long Captured { get; private set; }

    /// <summary>Opens the interface; libpcap's refusal (no such interface, no permission, a bad filter) is an <see cref="IOException"/>.</summary>
    /// <param name="readTimeoutMilliseconds">How long <see cref="TryReadNext"/> waits for a frame.</param>
    public static LiveCapture Open(string interfaceName, string? filter = "ip6", int readTimeoutMilliseconds = 100)
    {
        ArgumentException.ThrowIfNullOrEmpty(interfaceName);
        return new LiveCapture(LibpcapInterface.Open(interfaceName, filter, readTimeoutMilliseconds));
    }

    /// <summary>Waits up to the read timeout for the next frame; false when none came.</summary>
    public bool TryReadNext(out PcapRecord record)
    {
        record = default;
        if (!_interface.TryRead(_buffer, out int length, out int original, out var timestamp))
        {
            return false;
        }

        Captured++;
        record = new PcapRecord(timestamp, LinkType, _buffer.AsSpan(0, length).ToArray(), original);
        return true;
    }

    public void Dispose() => _interface.Dispose();
}
