using MipKeyAgent.Transport.Internal;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Transport;

/// <summary>
/// A user-space IPv6 host on a Linux tap device: it reads and writes Ethernet frames on
/// /dev/net/tun and does the host's half of Neighbor Discovery (RFC 4861) itself, because no
/// kernel stack stands behind its addresses. The kernel on the other side of the tap (or a
/// bridge it is enslaved to) sees an ordinary neighbour.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>Answers Neighbor Solicitations for its <see cref="TapTransportOptions.Addresses"/>
/// (RFC 4861 section 7.2.4), learning the solicitor's Source Link-Layer Address (section 7.2.3).</item>
/// <item>Resolves next hops (on-link destinations, otherwise the default router) with its own
/// multicast solicitations (section 7.2.2), holding up to
/// <see cref="TapTransportOptions.MaxQueuedPerNeighbor"/> datagrams per neighbour meanwhile and
/// dropping them after <see cref="TapTransportOptions.MaxSolicitations"/> unanswered tries.</item>
/// <item>Learns neighbour MACs from advertisements and from the source of any frame whose IPv6
/// source is on-link. Entries do not age: a lab link does not renumber under a running agent.</item>
/// <item>Delivers datagrams addressed to its addresses, Ethernet padding removed; ND messages are
/// consumed, other frames dropped.</item>
/// </list>
/// A background loop reads frames, so solicitations are answered even when nobody is receiving.
/// </remarks>
public sealed class TapTransport : IDatagramTransport
{
    private const int MaxFrameLength = Ethernet.HeaderLength + Ipv6Header.Length + 65_535;
    private const int SourceMacOffset = 6;

    private readonly DevicePump _pump;
    private readonly TapTransportOptions _options;
    private readonly byte[] _mac;
    private readonly HashSet<Ipv6Address> _addresses;
    private readonly Dictionary<Ipv6Address, byte[]> _neighbors = [];
    private readonly Dictionary<Ipv6Address, PendingResolution> _pending = [];
    private readonly Lock _gate = new();
    private long _answeredSolicitations;
    private long _sentSolicitations;
    private long _droppedUnresolved;
    private long _droppedNoRoute;
    private bool _disposed;

    internal TapTransport(IFrameDevice device, TapTransportOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Addresses.Count == 0)
        {
            throw new ArgumentException("A tap host needs at least one address.", nameof(options));
        }

        if (!options.MacAddress.IsEmpty && options.MacAddress.Length != Ethernet.MacLength)
        {
            throw new ArgumentException("A MAC address has 6 octets.", nameof(options));
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.MaxSolicitations);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.MaxQueuedPerNeighbor);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.ReceiveQueueLength);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.RetransmitInterval, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfGreaterThan((uint)options.OnLinkPrefixLength, 128u);

        _pump = new DevicePump(device, options.ReceiveQueueLength);
        _options = options;
        _mac = options.MacAddress.IsEmpty ? RandomLocalMac() : options.MacAddress.ToArray();
        _addresses = [.. options.Addresses];

        _pump.Start(HandleFrame, MaxFrameLength);
    }

    public string Name => $"tap:{_pump.Device.Name}";

    /// <summary>The tap interface's name as the kernel knows it.</summary>
    public string InterfaceName => _pump.Device.Name;

    /// <summary>This host's MAC (not the tap interface's own, which belongs to the kernel side).</summary>
    public ReadOnlyMemory<byte> MacAddress => _mac;

    public long AnsweredSolicitations => Interlocked.Read(ref _answeredSolicitations);

    public long SentSolicitations => Interlocked.Read(ref _sentSolicitations);

    /// <summary>Datagrams dropped because their next hop never answered.</summary>
    public long DroppedUnresolved => Interlocked.Read(ref _droppedUnresolved);

    /// <summary>Datagrams dropped because they were off-link and no default router is set.</summary>
    public long DroppedNoRoute => Interlocked.Read(ref _droppedNoRoute);

    public long DroppedReceiveQueueFull => _pump.DroppedQueueFull;

    /// <summary>Creates the tap interface <see cref="TapTransportOptions.InterfaceName"/> in the
    /// calling thread's network namespace (CAP_NET_ADMIN needed) and starts serving it.</summary>
    public static TapTransport Open(TapTransportOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new TapTransport(TunTapDevice.Open(options.InterfaceName), options);
    }

    /// <summary>The MAC learned for <paramref name="address"/>, if any.</summary>
    public bool TryGetNeighbor(Ipv6Address address, out ReadOnlyMemory<byte> mac)
    {
        lock (_gate)
        {
            var found = _neighbors.TryGetValue(address, out var bytes);
            mac = bytes;
            return found;
        }
    }

    public ValueTask SendAsync(ReadOnlyMemory<byte> datagram, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var error = Ipv6Header.TryRead(datagram.Span, out var header);
        if (!error.IsOk)
        {
            throw new ArgumentException($"Not an IPv6 datagram: {error}", nameof(datagram));
        }

        if (datagram.Length + Ethernet.HeaderLength > MaxFrameLength)
        {
            throw new ArgumentException("The datagram is longer than any Ethernet frame this device carries.", nameof(datagram));
        }

        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (NeighborDiscovery.IsMulticast(header.Destination))
            {
                Span<byte> groupMac = stackalloc byte[Ethernet.MacLength];
                NeighborDiscovery.WriteMulticastMac(header.Destination, groupMac);
                WriteFrame(groupMac, datagram.Span);
                return ValueTask.CompletedTask;
            }

            if (!TryGetNextHop(header.Destination, out var nextHop))
            {
                Interlocked.Increment(ref _droppedNoRoute);
                return ValueTask.CompletedTask;
            }

            if (_neighbors.TryGetValue(nextHop, out var mac))
            {
                WriteFrame(mac, datagram.Span);
                return ValueTask.CompletedTask;
            }

            if (_pending.TryGetValue(nextHop, out var pending))
            {
                // RFC 4861 section 7.2.2: when the queue overflows, the new datagram replaces the oldest.
                if (pending.Queue.Count == _options.MaxQueuedPerNeighbor)
                {
                    pending.Queue.Dequeue();
                    Interlocked.Increment(ref _droppedUnresolved);
                }

                pending.Queue.Enqueue(datagram.ToArray());
                return ValueTask.CompletedTask;
            }

            var source = _addresses.Contains(header.Source) ? header.Source : _options.Addresses[0];
            pending = new PendingResolution(nextHop, source);
            pending.Queue.Enqueue(datagram.ToArray());
            _pending.Add(nextHop, pending);
            SendSolicitation(pending);
            pending.Timer = _options.TimeProvider.CreateTimer(OnRetransmitTimer, pending, _options.RetransmitInterval, _options.RetransmitInterval);
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        _pump.ReceiveAsync(buffer, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            foreach (var pending in _pending.Values)
            {
                pending.Timer?.Dispose();
            }

            _pending.Clear();
        }

        await _pump.DisposeAsync().ConfigureAwait(false);
    }

    private void HandleFrame(ReadOnlySpan<byte> frame)
    {
        if (frame.Length < Ethernet.HeaderLength)
        {
            return;
        }

        // Only frames for our MAC or a group: a tap sees what the kernel sends to any neighbour.
        var destinationMac = frame[..Ethernet.MacLength];
        if ((destinationMac[0] & 1) == 0 && !destinationMac.SequenceEqual(_mac))
        {
            return;
        }

        if (!Ethernet.TryGetIpv6(frame, out var offset).IsOk)
        {
            return;
        }

        var octets = frame[offset..];
        var datagram = octets[..Datagram.Length(octets)];
        if (!Ipv6Datagram.TryParse(datagram, out var parsed).IsOk)
        {
            return;
        }

        var sourceMac = frame.Slice(SourceMacOffset, Ethernet.MacLength);
        if (parsed.UpperProtocol == IpProtocol.Icmpv6 && parsed.UpperLength > 0)
        {
            switch ((Icmpv6Type)datagram[parsed.UpperOffset])
            {
                case Icmpv6Type.NeighborSolicitation:
                    HandleSolicitation(datagram, sourceMac);
                    return;
                case Icmpv6Type.NeighborAdvertisement:
                    HandleAdvertisement(datagram);
                    return;
                case Icmpv6Type.RouterSolicitation or Icmpv6Type.RouterAdvertisement or Icmpv6Type.Redirect:
                    // Addresses and the router are configured, not learned.
                    return;
            }
        }

        var source = parsed.Header.Source;
        if (source != Ipv6Address.Unspecified && !NeighborDiscovery.IsMulticast(source) && IsOnLink(source))
        {
            Learn(source, sourceMac);
        }

        if (!_addresses.Contains(parsed.Header.Destination))
        {
            return;
        }

        _pump.Enqueue(datagram);
    }

    private void HandleSolicitation(ReadOnlySpan<byte> datagram, ReadOnlySpan<byte> frameSourceMac)
    {
        if (!NeighborDiscovery.TryReadNeighborSolicitation(datagram, out var solicitation).IsOk ||
            !_addresses.Contains(solicitation.TargetAddress))
        {
            return;
        }

        if (solicitation.Source != Ipv6Address.Unspecified && solicitation.SourceLinkLayerAddress.Length == Ethernet.MacLength)
        {
            // RFC 4861 section 7.2.3: the solicitor's link-layer address goes into the cache.
            Learn(solicitation.Source, solicitation.SourceLinkLayerAddress);
        }

        // O is set: we own the address.
        Span<byte> advertisement = stackalloc byte[NeighborAnswer.MaxLength];
        Span<byte> destinationMac = stackalloc byte[Ethernet.MacLength];
        int length = NeighborAnswer.Write(solicitation, solicitation.TargetAddress, NeighborAdvertisementFlags.Override, _mac, frameSourceMac,
            advertisement, destinationMac);

        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            Interlocked.Increment(ref _answeredSolicitations);
            WriteFrame(destinationMac, advertisement[..length]);
        }
    }

    private void HandleAdvertisement(ReadOnlySpan<byte> datagram)
    {
        // RFC 4861 section 7.2.5: without a Target Link-Layer Address option on a link with
        // addresses, the advertisement is silently discarded.
        if (NeighborDiscovery.TryReadNeighborAdvertisement(datagram, out var advertisement).IsOk &&
            advertisement.TargetLinkLayerAddress.Length == Ethernet.MacLength)
        {
            Learn(advertisement.TargetAddress, advertisement.TargetLinkLayerAddress);
        }
    }

    private void Learn(Ipv6Address address, ReadOnlySpan<byte> mac)
    {
        if ((mac[0] & 1) != 0)
        {
            return; // a group MAC never names a neighbour
        }

        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            if (!_neighbors.TryGetValue(address, out var known) || !known.AsSpan().SequenceEqual(mac))
            {
                known = mac.ToArray();
                _neighbors[address] = known;
            }

            if (_pending.Remove(address, out var pending))
            {
                pending.Timer?.Dispose();
                foreach (var queued in pending.Queue)
                {
                    WriteFrame(known, queued);
                }
            }
        }
    }

    private void OnRetransmitTimer(object? state)
    {
        var pending = (PendingResolution)state!;
        lock (_gate)
        {
            if (_disposed || !_pending.TryGetValue(pending.NextHop, out var current) || current != pending)
            {
                return;
            }

            if (pending.Solicitations >= _options.MaxSolicitations)
            {
                _pending.Remove(pending.NextHop);
                pending.Timer?.Dispose();
                Interlocked.Add(ref _droppedUnresolved, pending.Queue.Count);
                return;
            }

            SendSolicitation(pending);
        }
    }

    /// <summary>RFC 4861 section 7.2.2: multicast to the target's solicited-node address, with our
    /// Source Link-Layer Address. Called under the lock.</summary>
    private void SendSolicitation(PendingResolution pending)
    {
        var group = NeighborDiscovery.SolicitedNodeAddress(pending.NextHop);
        Span<byte> solicitation = stackalloc byte[Ipv6Header.Length + NeighborDiscovery.MessageLength + NeighborDiscovery.EthernetLinkLayerOptionLength];
        var length = NeighborDiscovery.WriteNeighborSolicitation(solicitation, pending.Source, group, pending.NextHop, _mac);
        Span<byte> groupMac = stackalloc byte[Ethernet.MacLength];
        NeighborDiscovery.WriteMulticastMac(group, groupMac);
        pending.Solicitations++;
        Interlocked.Increment(ref _sentSolicitations);
        WriteFrame(groupMac, solicitation[..length]);
    }

    private void WriteFrame(ReadOnlySpan<byte> destinationMac, ReadOnlySpan<byte> datagram)
    {
        var frame = new byte[Ethernet.HeaderLength + datagram.Length];
        Ethernet.WriteHeader(frame, destinationMac, _mac, Ethernet.EtherTypeIpv6);
        datagram.CopyTo(frame.AsSpan(Ethernet.HeaderLength));
        _pump.Device.WriteFrame(frame);
    }

    private bool TryGetNextHop(Ipv6Address destination, out Ipv6Address nextHop)
    {
        if (IsOnLink(destination))
        {
            nextHop = destination;
            return true;
        }

        nextHop = _options.DefaultRouter ?? default;
        return _options.DefaultRouter is not null;
    }

    private bool IsOnLink(Ipv6Address address)
    {
        // fe80::/10 (RFC 4291 section 2.5.6) is always on-link.
        if (address.Value >> 118 == 0x3FA)
        {
            return true;
        }

        var bits = _options.OnLinkPrefixLength;
        foreach (var local in _options.Addresses)
        {
            if (bits == 0 || (local.Value ^ address.Value) >> (128 - bits) == UInt128.Zero)
            {
                return true;
            }
        }

        return false;
    }

    private static byte[] RandomLocalMac()
    {
        var mac = new byte[Ethernet.MacLength];
        System.Security.Cryptography.RandomNumberGenerator.Fill(mac);

        // IEEE 802: bit 0x02 of the first octet = locally administered, 0x01 clear = unicast.
        mac[0] = (byte)((mac[0] & 0xFC) | 0x02);
        return mac;
    }

    private sealed class PendingResolution(Ipv6Address nextHop, Ipv6Address source)
    {
        public Ipv6Address NextHop { get; } = nextHop;

        public Ipv6Address Source { get; } = source;

        public Queue<byte[]> Queue { get; } = new();

        public int Solicitations { get; set; }

        public ITimer? Timer { get; set; }
    }
}
