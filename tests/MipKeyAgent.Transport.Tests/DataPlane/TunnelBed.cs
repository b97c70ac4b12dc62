using Microsoft.Extensions.Time.Testing;
using MipKeyAgent.Protocol;
using MipKeyAgent.Protocol.HomeAgent;
using MipKeyAgent.Protocol.Keys;
using MipKeyAgent.Protocol.MobileNode;
using MipKeyAgent.TestSupport;
using MipKeyAgent.Protocol.DataPlane;
using MipKeyAgent.Esp;
using MipKeyAgent.Wire;
using MipKeyAgent.Simulation;

namespace MipKeyAgent.Transport.Tests.DataPlane;

/// <summary>Records what the data plane asks of the home link.</summary>
internal sealed class RecordingProxy : IHomeAddressProxy
{
    public List<string> Calls { get; } = [];

    public void Add(Ipv6Address homeAddress) => Calls.Add($"add {homeAddress}");

    public void Remove(Ipv6Address homeAddress) => Calls.Add($"remove {homeAddress}");
}

/// <summary>
/// A home agent and one mobile node wired in memory with both data planes: control messages cross
/// the <see cref="EngineDriver"/>'s link, data is handed across by the tests.
/// </summary>
internal sealed class TunnelBed : IDisposable
{
    public static readonly Ipv6Address HomeAgentAddress = Ipv6Address.Parse("2001:db8:1::2");
    public static readonly Ipv6Address HomeAddress = Ipv6Address.Parse("2001:db8:1::100");
    public static readonly Ipv6Address CareOf = Ipv6Address.Parse("2001:db8:2::100");
    public static readonly Ipv6Address Correspondent = Ipv6Address.Parse("2001:db8:1::10");

    private readonly byte[] _haInner = new byte[70_000];
    private readonly byte[] _mnInner = new byte[70_000];

    public TunnelBed(EspSuite suite = EspSuite.AesGcm256, int linkMtu = 1500)
    {
        var provisioning = new MobileNodeProvisioning(HomeAddress, Enumerable.Range(1, 32).Select(i => (byte)i).ToArray(), new Spi(300), new Spi(301), suite);
        HomeAgent = new HomeAgentEngine(new HomeAgentOptions { Address = HomeAgentAddress }, Clock, new SeededKeySource(1), new SeededSpiSource(1),
            Driver, events: e => HomeAgentPlane?.OnProtocolEvent(e));
        HomeAgent.Provision(provisioning);
        HomeAgentPlane = new HomeAgentDataPlane(HomeAgent, Proxy, new HomeAgentDataPlaneOptions { LinkMtu = linkMtu, TimeProvider = Clock });
        MobileNode = new MobileNodeEngine(new MobileNodeOptions { Provisioning = provisioning, HomeAgentAddress = HomeAgentAddress, CareOfAddress = CareOf },
            Clock, Driver, new InMemoryMobileNodeStateStore(), new SeededKeySource(2));
        MobileNodePlane = new MobileNodeDataPlane(MobileNode, HomeAgentAddress, linkMtu, Clock);
        Driver.Attach(HomeAgentAddress, LinkDirection.ToHomeAgent, (byte[] d) => HomeAgent.Receive(d, _haInner));
        Driver.Attach(CareOf, LinkDirection.ToMobileNode, (byte[] d) => MobileNode.Receive(d, _mnInner));
    }

    public EngineDriver Driver { get; } = new(TestTime.NewClock());

    public FakeTimeProvider Clock => Driver.Clock;

    public RecordingProxy Proxy { get; } = new();

    public HomeAgentEngine HomeAgent { get; }

    public HomeAgentDataPlane HomeAgentPlane { get; }

    public MobileNodeEngine MobileNode { get; }

    public MobileNodeDataPlane MobileNodePlane { get; }

    public void Start()
    {
        MobileNode.Start();
        Driver.Pump();
    }

    /// <summary>Node-requested rekey, exchanged to the end.</summary>
    public void Rekey()
    {
        MobileNode.RequestUpdate();
        Driver.Pump();
    }

    /// <summary>An Echo Request (RFC 4443 section 4.1) with a valid checksum and <paramref name="dataLength"/> octets of data.</summary>
    public static byte[] Echo(Ipv6Address source, Ipv6Address destination, int dataLength = 16, byte hopLimit = 64, ushort sequence = 1)
    {
        var packet = new byte[Ipv6Header.Length + 8 + dataLength];
        new Ipv6Header(0, 0, (ushort)(8 + dataLength), IpProtocol.Icmpv6, hopLimit, source, destination).WriteTo(packet);
        var message = packet.AsSpan(Ipv6Header.Length);
        message[0] = (byte)Icmpv6Type.EchoRequest;
        message[7] = (byte)sequence;
        message[6] = (byte)(sequence >> 8);
        for (int i = 8; i < message.Length; i++)
        {
            message[i] = (byte)i;
        }

        Icmpv6.WriteChecksum(message, source, destination);
        return packet;
    }

    /// <summary>Correspondent to node: intercepted, tunnelled, opened by the node; the node's verdict and inner bytes.</summary>
    public (DataPlaneAction Home, DataPlaneAction Node, byte[] Delivered) Downstream(byte[] packet)
    {
        var output = new byte[70_000];
        var home = HomeAgentPlane.FromHomeLink(packet, output);
        if (home.Verdict != DataPlaneVerdict.Tunnel)
        {
            return (home, default, []);
        }

        var inner = new byte[70_000];
        var result = MobileNode.Receive(output.AsSpan(0, home.Length), inner);
        var node = MobileNodePlane.FromTunnel(result, inner);
        return (home, node, inner[..node.Length]);
    }

    /// <summary>Node to correspondent: read from the tun, tunnelled, opened by the HA; the HA's verdict and forwarded bytes.</summary>
    public (DataPlaneAction Node, DataPlaneAction Home, byte[] Forwarded) Upstream(byte[] packet)
    {
        var output = new byte[70_000];
        var node = MobileNodePlane.FromTun(packet, output);
        if (node.Verdict != DataPlaneVerdict.Tunnel)
        {
            return (node, default, output[..node.Length]);
        }

        var (home, forwarded) = DecapsulateAtHomeAgent(output.AsSpan(0, node.Length));
        return (node, home, forwarded);
    }

    public (DataPlaneAction Home, byte[] Bytes) DecapsulateAtHomeAgent(ReadOnlySpan<byte> tunnelDatagram)
    {
        var inner = new byte[70_000];
        var output = new byte[70_000];
        var result = HomeAgent.Receive(tunnelDatagram, inner);
        var home = HomeAgentPlane.FromTunnel(result, inner, output);
        return (home, home.Verdict == DataPlaneVerdict.Tunnel ? output[..home.Length] : inner[..home.Length]);
    }

    public void Dispose()
    {
        HomeAgent.Dispose();
        MobileNode.Dispose();
    }
}
