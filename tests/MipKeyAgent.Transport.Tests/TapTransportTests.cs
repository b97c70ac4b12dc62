using Microsoft.Extensions.Time.Testing;
using MipKeyAgent.TestSupport;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Transport.Tests;

/// <summary>The tap transport's neighbour discovery and delivery rules against an in-memory frame device.</summary>
public sealed class TapTransportTests : IAsyncLifetime
{
    private static readonly Ipv6Address Host = Ipv6Address.Parse("2001:db8:2::100");
    private static readonly Ipv6Address Router = Ipv6Address.Parse("2001:db8:2::1");
    private static readonly Ipv6Address Neighbor = Ipv6Address.Parse("2001:db8:2::7");
    private static readonly Ipv6Address OffLink = Ipv6Address.Parse("2001:db8:1::1");
    private static readonly byte[] HostMac = [0x02, 0, 0, 0, 0, 0x64];
    private static readonly byte[] RouterMac = [0x02, 0, 0, 0, 0, 0x01];
    private static readonly byte[] NeighborMac = [0x02, 0, 0, 0, 0, 0x07];

    private readonly FakeFrameDevice _device = new();
    private readonly FakeTimeProvider _time = TestTime.NewClock();
    private TapTransport _tap = null!;

    public Task InitializeAsync()
    {
        _tap = Create(defaultRouter: Router);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _tap.DisposeAsync();

    [Fact]
    public async Task Solicitation_ForOwnAddress_AnsweredWithSolicitedOverrideAdvertisement()
    {
        _device.Inject(Frame(NeighborDiscovery.SolicitedNodeAddress(Host), RouterMac, Solicitation(Router, Host, RouterMac)));

        var frame = await _device.NextWrittenAsync();

        Assert.Equal(Hex(RouterMac), Hex(frame.AsSpan(0, 6)));
        Assert.Equal(Hex(HostMac), Hex(frame.AsSpan(6, 6)));
        var error = NeighborDiscovery.TryReadNeighborAdvertisement(frame.AsSpan(Ethernet.HeaderLength), out var advertisement);
        Assert.True(error.IsOk, error.ToString());
        Assert.Equal(Host, advertisement.Source);
        Assert.Equal(Router, advertisement.Destination);
        Assert.Equal(Host, advertisement.TargetAddress);
        Assert.Equal(NeighborAdvertisementFlags.Solicited | NeighborAdvertisementFlags.Override, advertisement.Flags);
        Assert.Equal(Hex(HostMac), Hex(advertisement.TargetLinkLayerAddress));
        Assert.Equal(1, _tap.AnsweredSolicitations);
        Assert.True(_tap.TryGetNeighbor(Router, out var learned));
        Assert.Equal(Hex(RouterMac), Hex(learned.Span));
    }

    [Fact]
    public async Task Solicitation_ForOtherAddress_IsNotAnswered()
    {
        _device.Inject(Frame(NeighborDiscovery.SolicitedNodeAddress(Neighbor), RouterMac, Solicitation(Router, Neighbor, RouterMac)));
        _device.Inject(Frame(NeighborDiscovery.SolicitedNodeAddress(Host), RouterMac, Solicitation(Router, Host, RouterMac)));

        // Frames are handled in order, so the first frame written answers the second solicitation.
        var frame = await _device.NextWrittenAsync();

        Assert.True(NeighborDiscovery.TryReadNeighborAdvertisement(frame.AsSpan(Ethernet.HeaderLength), out var advertisement).IsOk);
        Assert.Equal(Host, advertisement.TargetAddress);
        Assert.Equal(1, _tap.AnsweredSolicitations);
    }

    [Fact]
    public async Task Solicitation_FromUnspecified_AnsweredToAllNodesWithoutSolicitedFlag()
    {
        // RFC 4861 section 7.2.4: duplicate address detection gets a multicast answer.
        var buffer = new byte[128];
        var length = NeighborDiscovery.WriteNeighborSolicitation(buffer, Ipv6Address.Unspecified, NeighborDiscovery.SolicitedNodeAddress(Host), Host, []);
        _device.Inject(Frame(NeighborDiscovery.SolicitedNodeAddress(Host), NeighborMac, buffer[..length]));

        var frame = await _device.NextWrittenAsync();

        Assert.Equal("333300000001", Hex(frame.AsSpan(0, 6)));
        Assert.True(NeighborDiscovery.TryReadNeighborAdvertisement(frame.AsSpan(Ethernet.HeaderLength), out var advertisement).IsOk);
        Assert.Equal(NeighborDiscovery.AllNodes, advertisement.Destination);
        Assert.Equal(NeighborAdvertisementFlags.Override, advertisement.Flags);
        Assert.False(_tap.TryGetNeighbor(Ipv6Address.Unspecified, out _));
    }

    [Fact]
    public async Task Send_UnknownOnLinkNeighbor_SolicitsThenSendsQueuedDatagramOnAdvertisement()
    {
        var datagram = TestDatagrams.HomeAddressEsp(Host, Neighbor, Router, 0x100, 1);

        await _tap.SendAsync(datagram);
        var solicitationFrame = await _device.NextWrittenAsync();

        Assert.Equal("3333ff000007", Hex(solicitationFrame.AsSpan(0, 6)));
        var error = NeighborDiscovery.TryReadNeighborSolicitation(solicitationFrame.AsSpan(Ethernet.HeaderLength), out var solicitation);
        Assert.True(error.IsOk, error.ToString());
        Assert.Equal(Host, solicitation.Source);
        Assert.Equal(NeighborDiscovery.SolicitedNodeAddress(Neighbor), solicitation.Destination);
        Assert.Equal(Neighbor, solicitation.TargetAddress);
        Assert.Equal(Hex(HostMac), Hex(solicitation.SourceLinkLayerAddress));

        _device.Inject(Frame(HostMac, NeighborMac, Advertisement(Neighbor, Host, NeighborMac)));
        var frame = await _device.NextWrittenAsync();

        Assert.Equal(Hex(NeighborMac), Hex(frame.AsSpan(0, 6)));
        Assert.Equal(Hex(HostMac), Hex(frame.AsSpan(6, 6)));
        Assert.Equal("86dd", Hex(frame.AsSpan(12, 2)));
        Assert.Equal(Hex(datagram), Hex(frame.AsSpan(Ethernet.HeaderLength)));
    }

    [Fact]
    public async Task Send_KnownNeighbor_GoesOutWithoutSolicitation()
    {
        _device.Inject(Frame(HostMac, NeighborMac, Advertisement(Neighbor, Host, NeighborMac)));
        await WaitUntil(() => _tap.TryGetNeighbor(Neighbor, out _));

        var datagram = TestDatagrams.RoutingType2Esp(Host, Neighbor, Router, 0x200, 2);
        await _tap.SendAsync(datagram);
        var frame = await _device.NextWrittenAsync();

        Assert.Equal(Hex(NeighborMac), Hex(frame.AsSpan(0, 6)));
        Assert.Equal(Hex(datagram), Hex(frame.AsSpan(Ethernet.HeaderLength)));
        Assert.Equal(0, _tap.SentSolicitations);
    }

    [Fact]
    public async Task Send_OffLinkDestination_ResolvesDefaultRouter()
    {
        var datagram = TestDatagrams.HomeAddressEsp(Host, OffLink, Router, 0x100, 1);

        await _tap.SendAsync(datagram);
        var solicitationFrame = await _device.NextWrittenAsync();
        Assert.True(NeighborDiscovery.TryReadNeighborSolicitation(solicitationFrame.AsSpan(Ethernet.HeaderLength), out var solicitation).IsOk);
        Assert.Equal(Router, solicitation.TargetAddress);

        _device.Inject(Frame(HostMac, RouterMac, Advertisement(Router, Host, RouterMac)));
        var frame = await _device.NextWrittenAsync();
        Assert.Equal(Hex(RouterMac), Hex(frame.AsSpan(0, 6)));
        Assert.Equal(Hex(datagram), Hex(frame.AsSpan(Ethernet.HeaderLength)));
    }

    [Fact]
    public async Task Send_OffLinkWithoutDefaultRouter_IsDroppedAndCounted()
    {
        await using var tap = Create(defaultRouter: null, device: new FakeFrameDevice());

        await tap.SendAsync(TestDatagrams.HomeAddressEsp(Host, OffLink, Router, 1, 1));

        Assert.Equal(1, tap.DroppedNoRoute);
        Assert.Equal(0, tap.SentSolicitations);
    }

    [Fact]
    public async Task Send_NeighborNeverAnswers_RetransmitsEverySecondThenDropsAfterThreeSolicitations()
    {
        await _tap.SendAsync(TestDatagrams.HomeAddressEsp(Host, Neighbor, Router, 1, 1));
        await _tap.SendAsync(TestDatagrams.HomeAddressEsp(Host, Neighbor, Router, 1, 2));
        await _device.NextWrittenAsync();
        Assert.False(_device.TryTakeWritten(out _)); // the second datagram joins the queue without a new solicitation

        _time.Advance(TimeSpan.FromSeconds(1));
        await _device.NextWrittenAsync();
        _time.Advance(TimeSpan.FromSeconds(1));
        await _device.NextWrittenAsync();
        Assert.Equal(3, _tap.SentSolicitations);
        Assert.Equal(0, _tap.DroppedUnresolved);

        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(2, _tap.DroppedUnresolved);
        Assert.Equal(3, _tap.SentSolicitations);

        // A late advertisement finds nothing left to send.
        _device.Inject(Frame(HostMac, NeighborMac, Advertisement(Neighbor, Host, NeighborMac)));
        await WaitUntil(() => _tap.TryGetNeighbor(Neighbor, out _));
        Assert.False(_device.TryTakeWritten(out _));
    }

    [Fact]
    public async Task Send_MulticastDestination_UsesGroupMacWithoutResolution()
    {
        var datagram = TestDatagrams.Other(Host, NeighborDiscovery.AllNodes);

        await _tap.SendAsync(datagram);
        var frame = await _device.NextWrittenAsync();

        Assert.Equal("333300000001", Hex(frame.AsSpan(0, 6)));
        Assert.Equal(0, _tap.SentSolicitations);
    }

    [Fact]
    public async Task Receive_DatagramForOwnAddress_DeliveredWithoutEthernetPaddingAndSourceLearned()
    {
        var datagram = TestDatagrams.RoutingType2Esp(Neighbor, Host, Router, 0x300, 7, payloadLength: 0);
        _device.Inject([.. Frame(HostMac, NeighborMac, datagram), 0, 0, 0, 0]); // trailing link padding

        var buffer = new byte[2048];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var length = await _tap.ReceiveAsync(buffer, timeout.Token);

        Assert.Equal(Hex(datagram), Hex(buffer.AsSpan(0, length)));
        Assert.True(_tap.TryGetNeighbor(Neighbor, out var learned));
        Assert.Equal(Hex(NeighborMac), Hex(learned.Span));
    }

    [Fact]
    public async Task Receive_OtherDestinationOrOtherMac_NotDelivered()
    {
        _device.Inject(Frame(HostMac, NeighborMac, TestDatagrams.Other(Neighbor, Router)));
        _device.Inject(Frame(RouterMac, NeighborMac, TestDatagrams.Other(Neighbor, Host)));
        var expected = TestDatagrams.Other(Neighbor, Host, payloadLength: 24);
        _device.Inject(Frame(HostMac, NeighborMac, expected));

        var buffer = new byte[2048];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var length = await _tap.ReceiveAsync(buffer, timeout.Token);

        Assert.Equal(Hex(expected), Hex(buffer.AsSpan(0, length)));
    }

    [Fact]
    public async Task Dispose_PendingReceive_ReturnsZeroAndClosesDevice()
    {
        var device = new FakeFrameDevice();
        var tap = Create(defaultRouter: null, device: device);
        var receive = tap.ReceiveAsync(new byte[2048]).AsTask();

        await tap.DisposeAsync();

        Assert.Equal(0, await receive.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.True(device.Disposed);
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await tap.SendAsync(TestDatagrams.Other(Host, Neighbor)));
    }

    private TapTransport Create(Ipv6Address? defaultRouter, FakeFrameDevice? device = null) =>
        new(device ?? _device, new TapTransportOptions
        {
            InterfaceName = "fake0",
            Addresses = [Host],
            MacAddress = HostMac,
            DefaultRouter = defaultRouter,
            TimeProvider = _time,
        });

    private static byte[] Solicitation(Ipv6Address source, Ipv6Address target, byte[] sourceMac)
    {
        var buffer = new byte[128];
        var length = NeighborDiscovery.WriteNeighborSolicitation(buffer, source, NeighborDiscovery.SolicitedNodeAddress(target), target, sourceMac);
        return buffer[..length];
    }

    private static byte[] Advertisement(Ipv6Address target, Ipv6Address destination, byte[] targetMac)
    {
        var buffer = new byte[128];
        var length = NeighborDiscovery.WriteNeighborAdvertisement(buffer, target, destination,
            NeighborAdvertisementFlags.Solicited | NeighborAdvertisementFlags.Override, target, targetMac);
        return buffer[..length];
    }

    private static byte[] Frame(Ipv6Address multicastDestination, byte[] sourceMac, byte[] datagram)
    {
        var mac = new byte[6];
        NeighborDiscovery.WriteMulticastMac(multicastDestination, mac);
        return Frame(mac, sourceMac, datagram);
    }

    private static byte[] Frame(byte[] destinationMac, byte[] sourceMac, byte[] datagram)
    {
        var frame = new byte[Ethernet.HeaderLength + datagram.Length];
        Ethernet.WriteHeader(frame, destinationMac, sourceMac, Ethernet.EtherTypeIpv6);
        datagram.CopyTo(frame, Ethernet.HeaderLength);
        return frame;
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        for (var i = 0; i < 500 && !condition(); i++)
        {
            await Task.Delay(10);
        }

        Assert.True(condition(), "condition not reached within 5 s");
    }

    private static string Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexString(bytes).ToLowerInvariant();
}
