using MipKeyAgent.Transport.Internal;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Transport;

/// <summary>
/// Puts IPv6 datagrams on an Ethernet link as they are, without routing or Neighbor Discovery (the
/// replayed addresses are usually nobody's on that link): each becomes one frame to a fixed
/// destination MAC. On an existing interface (a veth end, a NIC, a tap another process serves) it
/// injects through libpcap (SharpPcap's live device, pcap_inject), so the frames leave that
/// interface towards its peer (CAP_NET_RAW). When no interface has that name it creates a tap, brings it up and writes into it,
/// so the frames arrive at the kernel's side of the tap (CAP_NET_ADMIN).
/// </summary>
public sealed class FrameInjector : IDisposable
{
    /// <summary>ff:ff:ff:ff:ff:ff: every host on the link receives the frame, whatever its MAC.</summary>
    public static ReadOnlyMemory<byte> Broadcast { get; } = new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF };

    private readonly IFrameDevice _device;
    private readonly byte[] _header = new byte[Ethernet.HeaderLength];
    private readonly byte[] _frame = new byte[Ethernet.HeaderLength + Ipv6Header.Length + ushort.MaxValue];

    private FrameInjector(IFrameDevice device, ReadOnlySpan<byte> sourceMac, ReadOnlySpan<byte> destinationMac, bool createdTap)
    {
        _device = device;
        CreatedTap = createdTap;
        Ethernet.WriteHeader(_header, destinationMac, sourceMac, Ethernet.EtherTypeIpv6);
    }

    /// <summary>The interface written to.</summary>
    public string InterfaceName => _device.Name;

    /// <summary>True when no interface had the name and this injector created a tap (removed again on dispose).</summary>
    public bool CreatedTap { get; }

    /// <summary>Frames written.</summary>
    public long Sent { get; private set; }

    /// <summary>Opens <paramref name="interfaceName"/> in the calling thread's network namespace.</summary>
    /// <param name="destinationMac">The frames' destination; <see cref="Broadcast"/> when empty.</param>
    public static FrameInjector Open(string interfaceName, ReadOnlyMemory<byte> destinationMac = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(interfaceName);
        var destination = destinationMac.IsEmpty ? Broadcast : destinationMac;
        if (destination.Length != Ethernet.MacLength)
        {
            throw new ArgumentException("A MAC address has 6 octets.", nameof(destinationMac));
        }

        if (LibC.if_nametoindex(interfaceName) != 0)
        {
            var device = LibpcapInterface.Open(interfaceName);
            var mac = device.MacAddress;
            return new FrameInjector(device, mac.Length == Ethernet.MacLength ? mac : new byte[Ethernet.MacLength], destination.Span, createdTap: false);
        }

        var tap = TunTapDevice.Open(interfaceName);
        try
        {
            InterfaceControl.SetUp(tap.Name);
            Span<byte> source = stackalloc byte[Ethernet.MacLength];
            System.Security.Cryptography.RandomNumberGenerator.Fill(source);
            source[0] = (byte)((source[0] & 0xFC) | 0x02); // locally administered unicast
            return new FrameInjector(tap, source, destination.Span, createdTap: true);
        }
        catch
        {
            tap.Dispose();
            throw;
        }
    }

    /// <summary>Writes one IPv6 datagram (from the first octet of its header) as one frame.</summary>
    public void Send(ReadOnlySpan<byte> datagram)
    {
        if (datagram.Length > _frame.Length - Ethernet.HeaderLength)
        {
            throw new ArgumentException("The datagram is longer than any frame this injector writes.", nameof(datagram));
        }

        _header.CopyTo(_frame, 0);
        datagram.CopyTo(_frame.AsSpan(Ethernet.HeaderLength));
        _device.WriteFrame(_frame.AsSpan(0, Ethernet.HeaderLength + datagram.Length));
        Sent++;
    }

    public void Dispose() => _device.Dispose();
}
