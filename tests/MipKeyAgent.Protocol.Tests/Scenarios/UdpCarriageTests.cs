using System.Net;
using Microsoft.Extensions.Time.Testing;
using MipKeyAgent.Protocol;

namespace MipKeyAgent.Protocol.Tests.Scenarios;

/// <summary>
/// The client/server carriage (PROTOCOL.md section 11): the engines with what a UDP transport hands them in
/// between (<see cref="UdpEncapsulation"/>), the client behind a NAT whose public endpoint the test chooses. The
/// scenario set of the Mobile IPv6 path (init, update, lost answer and resend, server restart with and without its
/// state, implicit mode), and the server following the client's latest authenticated source only.
/// </summary>
public sealed class UdpCarriageTests
{
    [Fact]
    public void Start_OverUdp_ServerBindsTheNatEndpointNotTheClientsOwnCareOf()
    {
        using var bed = new UdpBed();
        bed.Start();

        Assert.Equal(new Generation(1), bed.Node.View.Newest);
        var view = bed.HomeAgent.GetNode(UdpBed.HomeAddress)!;
        Assert.Equal(new Generation(1), view.Newest);
        Assert.Equal(bed.EndpointName, view.CareOfAddress);
        Assert.Equal(2, bed.ToServer.Count + bed.ToClient.Count);
        Assert.All(bed.ToClient, sent => Assert.Equal(bed.Endpoint, sent.Endpoint));
        Assert.Equal(0, bed.HomeAgent.Counters.DroppedTotal);
        Assert.Equal(0, bed.Node.Counters.DroppedTotal);
    }

    [Fact]
    public void Update_OverUdp_NextGenerationOnBothSides()
    {
        using var bed = new UdpBed();
        bed.Start();
        bed.Node.RequestUpdate();
        bed.Driver.Pump();

        Assert.Equal(new Generation(2), bed.Node.View.Newest);
        Assert.Equal(new Generation(2), bed.HomeAgent.GetNode(UdpBed.HomeAddress)!.Newest);
        Assert.Equal(bed.Node.KeyRing.Newest.SpiMnToHa, bed.HomeAgent.GetKeyRing(UdpBed.HomeAddress)!.Newest.SpiMnToHa);
        Assert.Equal(0, bed.HomeAgent.Counters.DroppedTotal);
    }

    [Fact]
    public void UpdateAnswerLost_OverUdp_ResendGetsSameGeneration()
    {
        using var bed = new UdpBed();
        bed.Start();
        bed.Driver.DropNext(UdpBed.CareOf);
        bed.Node.RequestUpdate();
        bed.Driver.Pump();
        var issued = bed.HomeAgent.GetKeyRing(UdpBed.HomeAddress)!.Newest;
        Assert.Equal(new Generation(1), bed.Node.View.Newest);

        bed.Driver.Run(TimeSpan.FromSeconds(1.5));

        Assert.Equal(1, bed.HomeAgent.Counters.Resends);
        Assert.Same(issued, bed.HomeAgent.GetKeyRing(UdpBed.HomeAddress)!.Newest);
        Assert.Equal(new Generation(2), bed.Node.View.Newest);
        Assert.Equal(issued.SpiMnToHa, bed.Node.KeyRing.Newest.SpiMnToHa);
    }

    [Fact]
    public void NatRebinds_OverUdp_ServerAnswersAndBindsTheNewEndpoint()
    {
        using var bed = new UdpBed();
        bed.Start();
        var before = bed.EndpointName;
        bed.Endpoint = new IPEndPoint(IPAddress.Parse("203.0.113.9"), 61000);
        bed.Node.RequestUpdate();
        bed.Driver.Pump();

        Assert.NotEqual(before, bed.EndpointName);
        Assert.Equal(bed.EndpointName, bed.HomeAgent.GetNode(UdpBed.HomeAddress)!.CareOfAddress);
        Assert.Equal(bed.Endpoint, bed.ToClient[^1].Endpoint);
        Assert.Equal(new Generation(2), bed.Node.View.Newest);
    }

    [Fact]
    public void ForgedAndReplayedFromAnotherEndpoint_OverUdp_DroppedBindingStays()
    {
        using var bed = new UdpBed();
        bed.Start();
        var bound = bed.EndpointName;
        int answers = bed.ToClient.Count;
        UdpEncapsulation.TryGetEndpointName(new IPEndPoint(IPAddress.Parse("192.0.2.66"), 4500), out var attacker);

        // The client's last BU again (a replay), and a forged one under the current SPI, from the attacker's endpoint.
        var replay = bed.ToServer[^1].Esp;
        var forged = (byte[])replay.Clone();
        forged[^1] ^= 0x01;
        var buffer = new byte[2048];
        int length = UdpEncapsulation.WriteAtServer(buffer, attacker, UdpBed.ServerAddress, replay);
        Assert.Equal(DropReason.Replay, bed.HomeAgent.Receive(buffer.AsSpan(0, length), new byte[2048]).Reason);
        BitConverterWriteSequence(forged, 1000);
        length = UdpEncapsulation.WriteAtServer(buffer, attacker, UdpBed.ServerAddress, forged);
        Assert.Equal(ReceiveOutcome.Dropped, bed.HomeAgent.Receive(buffer.AsSpan(0, length), new byte[2048]).Outcome);
        bed.Driver.Pump();

        Assert.Equal(bound, bed.HomeAgent.GetNode(UdpBed.HomeAddress)!.CareOfAddress);
        Assert.Equal(answers, bed.ToClient.Count);
    }

    [Fact]
    public void ServerRestartsWithState_OverUdp_UpdateWithoutReinit()
    {
        using var bed = new UdpBed();
        bed.Start();
        bed.RestartHomeAgent(keepState: true);
        bed.Node.RequestUpdate();
        bed.Driver.Pump();

        Assert.Equal(new Generation(2), bed.Node.View.Newest);
        Assert.Equal(0, bed.Node.Counters.ReInits);
        Assert.Equal(bed.EndpointName, bed.HomeAgent.GetNode(UdpBed.HomeAddress)!.CareOfAddress);
    }

    [Fact]
    public void ServerRestartsWithoutState_OverUdp_ClientReinitializesUnderIk()
    {
        using var bed = new UdpBed();
        bed.Start();
        bed.RestartHomeAgent(keepState: false);
        bed.Node.RequestUpdate();
        bed.Driver.Pump();
        // The update and three retransmissions (1 + 2 + 4 s) go unanswered (unknown SPI), then the client re-initializes.
        bed.Driver.Run(TimeSpan.FromSeconds(16));

        Assert.Equal(1, bed.Node.Counters.ReInits);
        Assert.True(bed.HomeAgent.Counters.Dropped(DropReason.UnknownSpi) >= 4);
        Assert.Equal(new Generation(1), bed.HomeAgent.GetNode(UdpBed.HomeAddress)!.Newest);
        Assert.Equal(new Generation(1), bed.Node.View.Newest);
        Assert.Equal(bed.Node.KeyRing.Newest.SpiMnToHa, bed.HomeAgent.GetKeyRing(UdpBed.HomeAddress)!.Newest.SpiMnToHa);
        Assert.Equal(bed.EndpointName, bed.HomeAgent.GetNode(UdpBed.HomeAddress)!.CareOfAddress);
    }

    [Fact]
    public void ImplicitMode_OverUdp_InitAndUpdate()
    {
        // Implicit mode has no request options: the server's own timer rekeys, hastened by a BRR sent to the bound endpoint.
        using var bed = new UdpBed(KeyExchangeMode.Implicit, homeAgentRekey: TimeSpan.FromSeconds(30));
        bed.Start();
        // The refresh BU (3/4 of the 420 s lifetime) confirms g1 and starts the server's timer; 30 s later it rekeys.
        bed.Driver.Run(TimeSpan.FromSeconds(315 + 35));

        Assert.True(bed.Node.View.Newest.Value >= 2, $"newest {bed.Node.View.Newest}");
        Assert.Equal(bed.Node.View.Newest, bed.HomeAgent.GetNode(UdpBed.HomeAddress)!.Newest);
        Assert.Equal(0, bed.HomeAgent.Counters.DroppedTotal);
        Assert.True(bed.HomeAgent.Counters.BindingRefreshRequests >= 1);
        Assert.All(bed.ToClient, sent => Assert.Equal(bed.Endpoint, sent.Endpoint));
    }

    [Fact]
    public void MobileIpv6Carriage_BuWithoutHomeAddressOption_IsDropped()
    {
        // The same datagram an UDP server hands its engine: a Mobile IPv6 home agent refuses it (no Home Address option).
        using var bed = new UdpBed();
        bed.Node.Start();
        var esp = bed.ToServer[0].Esp;
        using var native = new HomeAgentEngine(new HomeAgentOptions { Address = UdpBed.ServerAddress }, bed.Driver.Clock, new SeededKeySource(1),
            new SeededSpiSource(1), bed.Driver);
        native.Provision(bed.Provisioning);
        var buffer = new byte[2048];
        int length = UdpEncapsulation.WriteAtServer(buffer, bed.EndpointName, UdpBed.ServerAddress, esp);

        Assert.Equal(DropReason.HomeAddressMismatch, native.Receive(buffer.AsSpan(0, length), new byte[2048]).Reason);
    }

    private static void BitConverterWriteSequence(byte[] esp, uint sequence) =>
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(esp.AsSpan(4), sequence);
}

/// <summary>A server engine (UDP carriage) and one client engine, a NAT between them, one manual clock.</summary>
internal sealed class UdpBed : IDisposable
{
    public static readonly Ipv6Address ServerAddress = Ipv6Address.Parse("2001:db8:1::1");
    public static readonly Ipv6Address HomeAddress = Ipv6Address.Parse("2001:db8:2::1");
    public static readonly Ipv6Address CareOf = Ipv6Address.Parse("2001:db8:100::1");
    private readonly byte[] _inner = new byte[Ipv6Header.Length + ushort.MaxValue];
    private readonly InMemoryBindingStore _store = new();
    private readonly KeyExchangeMode _mode;
    private readonly TimeSpan? _homeAgentRekey;
    private int _restarts;

    public UdpBed(KeyExchangeMode mode = KeyExchangeMode.Explicit, TimeSpan? homeAgentRekey = null)
    {
        _mode = mode;
        _homeAgentRekey = homeAgentRekey;
        var ik = new byte[32];
        new Random(5).NextBytes(ik);
        Provisioning = new MobileNodeProvisioning(HomeAddress, ik, new Spi(1000), new Spi(1001), EspSuite.AesGcm256);
        HomeAgent = NewHomeAgent();
        Node = new MobileNodeEngine(new MobileNodeOptions
        {
            Provisioning = Provisioning,
            HomeAgentAddress = ServerAddress,
            CareOfAddress = CareOf,
            Mode = mode,
        }, Driver.Clock, new Sink(this, toServer: true), new InMemoryMobileNodeStateStore(), new SeededKeySource(99));
        Driver.Attach(ServerAddress, LinkDirection.ToHomeAgent, (byte[] d) => HomeAgent.Receive(d, _inner));
        Driver.Attach(CareOf, LinkDirection.ToMobileNode, (byte[] d) => Node.Receive(d, _inner));
        Driver.AddTimer(() => HomeAgent.NextDeadline, () => HomeAgent.Tick());
        Driver.AddTimer(() => Node.NextDeadline, () => Node.Tick());
    }

    public EngineDriver Driver { get; } = new(TestTime.NewClock());

    public MobileNodeProvisioning Provisioning { get; }

    public HomeAgentEngine HomeAgent { get; private set; }

    public MobileNodeEngine Node { get; }

    /// <summary>The client's public endpoint, as its NAT rewrites it.</summary>
    public IPEndPoint Endpoint { get; set; } = new(IPAddress.Parse("198.51.100.7"), 40001);

    public Ipv6Address EndpointName => UdpEncapsulation.TryGetEndpointName(Endpoint, out var name) ? name : throw new InvalidOperationException();

    /// <summary>UDP payloads the client sent (ESP header onward).</summary>
    public List<(IPEndPoint From, byte[] Esp)> ToServer { get; } = [];

    /// <summary>UDP payloads the server sent, with the endpoint it sent them to.</summary>
    public List<(IPEndPoint Endpoint, byte[] Esp)> ToClient { get; } = [];

    public void Start()
    {
        Node.Start();
        Driver.Pump();
    }

    public void RestartHomeAgent(bool keepState)
    {
        Driver.Clear();
        HomeAgent.Dispose();
        if (!keepState)
        {
            _store.LoseBindings();
        }
        _restarts++;
        HomeAgent = NewHomeAgent();
    }

    private HomeAgentEngine NewHomeAgent()
    {
        var engine = new HomeAgentEngine(new HomeAgentOptions
            {
                Address = ServerAddress,
                Mode = _mode,
                Carriage = Carriage.Udp,
                RekeyInterval = _homeAgentRekey,
                SendBindingRefreshRequest = _homeAgentRekey is not null,
            },
            Driver.Clock, new SeededKeySource(7 + _restarts), new SeededSpiSource(7 + _restarts), new Sink(this, toServer: false), _store);
        engine.Provision(Provisioning);
        return engine;
    }

    public void Dispose()
    {
        HomeAgent.Dispose();
        Node.Dispose();
    }

    /// <summary>What the two UDP transports do with an engine's datagram: its ESP onward to the peer, the peer's view on the link.</summary>
    private sealed class Sink(UdpBed bed, bool toServer) : IDatagramSink
    {
        public void Send(ReadOnlySpan<byte> datagram)
        {
            Assert.True(UdpEncapsulation.TryGetPayload(datagram, out int offset, out int length, out var destination).IsOk);
            var esp = datagram.Slice(offset, length);
            var buffer = new byte[Ipv6Header.Length + 24 + esp.Length];
            int written;
            if (toServer)
            {
                bed.ToServer.Add((bed.Endpoint, esp.ToArray()));
                written = UdpEncapsulation.WriteAtServer(buffer, bed.EndpointName, ServerAddress, esp);
            }
            else
            {
                Assert.True(UdpEncapsulation.TryGetEndpoint(destination, out var endpoint));
                bed.ToClient.Add((endpoint!, esp.ToArray()));
                if (!endpoint!.Equals(bed.Endpoint))
                {
                    return; // the NAT has no mapping for an old endpoint any more
                }
                written = UdpEncapsulation.WriteAtClient(buffer, ServerAddress, CareOf, HomeAddress, esp);
            }
            bed.Driver.Send(buffer.AsSpan(0, written));
        }
    }
}
