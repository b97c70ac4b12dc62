using MipKeyAgent.Transport.Internal;

namespace MipKeyAgent.Transport;

/// <summary>
/// A Linux tun device (IFF_TUN | IFF_NO_PI on /dev/net/tun): the kernel's IP stack on one side,
/// whole IPv6 packets on ours. The mobile node puts its home address on it, so ordinary programs
/// send through the tunnel without knowing (RFC 6275 section 11.3.1): what they send is read here,
/// what is written here they receive.
/// </summary>
/// <remarks>
/// <see cref="Open"/> creates the interface in the calling thread's network namespace, sets its
/// MTU, adds the address and brings it up (netdevice(7) ioctls; CAP_NET_ADMIN). Routes are the
/// caller's (for example a default route through the tun, with a host route to the home agent
/// through the care-of link). A tun has no link layer, so no Neighbor Discovery happens on it.
/// Packets that are not IPv6 (version nibble) are passed over.
/// </remarks>
public sealed class TunTransport : IDatagramTransport
{
    private const int MaxPacketLength = 40 + 65_535;
    private const int IpVersion6 = 6;

    private readonly DevicePump _pump;
    private readonly InterfaceCounters? _counters;
    private long _passedOver;

    internal TunTransport(IFrameDevice device, int receiveQueueLength, InterfaceCounters? counters = null)
    {
        _counters = counters;
        _pump = new DevicePump(device, receiveQueueLength, waitWhenFull: true);
        _pump.Start(HandlePacket, MaxPacketLength);
    }

    public string Name => $"tun:{_pump.Device.Name}";

    public string InterfaceName => _pump.Device.Name;

    /// <summary>Packets the node's stack sent that the kernel dropped because the tun's queue to our reads was full.</summary>
    public long KernelDropped => _counters?.TransmitDropped() ?? 0;

    /// <summary>Packets read from the tun that were not IPv6.</summary>
    public long PassedOver => Interlocked.Read(ref _passedOver);

    /// <summary>Creates and configures the tun interface in the calling thread's network namespace.</summary>
    public static TunTransport Open(TunTransportOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var device = TunTapDevice.OpenTun(options.InterfaceName);
        try
        {
            if (options.Mtu is { } mtu)
            {
                InterfaceControl.SetMtu(device.Name, mtu);
            }

            if (options.TransmitQueueLength is { } queue)
            {
                InterfaceControl.SetTransmitQueueLength(device.Name, queue);
            }

            InterfaceControl.SetUp(device.Name);
            if (options.Address is { } address)
            {
                InterfaceControl.AddAddress(device.Name, address, options.PrefixLength);
            }
        }
        catch
        {
            device.Dispose();
            throw;
        }

        return new TunTransport(device, options.ReceiveQueueLength, InterfaceCounters.Open(device.Name));
    }

    public ValueTask SendAsync(ReadOnlyMemory<byte> datagram, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Write(datagram.Span);
        return ValueTask.CompletedTask;
    }

    /// <summary>Writes one packet to the node's stack now, on the calling thread (one write(2); a tun never blocks it).</summary>
    public void Write(ReadOnlySpan<byte> packet)
    {
        ObjectDisposedException.ThrowIf(_pump.IsDisposed, this);
        _pump.Device.WriteFrame(packet);
    }

    public ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        _pump.ReceiveAsync(buffer, cancellationToken);

    /// <summary>
    /// Waits for the next packet, then hands over up to <paramref name="max"/> of those waiting (each its own
    /// array, owned by the caller from then on): the data plane's bulk path. 0 after disposal.
    /// </summary>
    public ValueTask<int> ReceivePacketsAsync(List<byte[]> into, int max, CancellationToken cancellationToken = default) =>
        _pump.ReceiveManyAsync(into, max, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await _pump.DisposeAsync().ConfigureAwait(false);
        _counters?.Dispose();
    }

    private void HandlePacket(ReadOnlySpan<byte> packet)
    {
        if (packet.Length == 0 || packet[0] >> 4 != IpVersion6)
        {
            Interlocked.Increment(ref _passedOver);
            return;
        }

        _pump.Enqueue(packet[..Datagram.Length(packet)]);
    }
}
