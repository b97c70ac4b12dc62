using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Microsoft.Extensions.Time.Testing;
using MipKeyAgent.Protocol;
using MipKeyAgent.Protocol.HomeAgent;
using MipKeyAgent.Protocol.Keys;
using MipKeyAgent.Protocol.MobileNode;
using MipKeyAgent.Protocol.DataPlane;
using MipKeyAgent.Esp;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Benchmarks.DataPlane;

/// <summary>
/// Tunnel throughput of the data plane against its AEAD floor, per suite and
/// inner packet size. Each (suite, size) group pairs:
/// <list type="bullet">
/// <item>the floor: <see cref="SecurityAssociation.Seal"/> + <see cref="SecurityAssociation.Open"/> of
/// an ESP tunnel-mode payload (next header 41) that is the inner packet, the cryptographic work one
/// tunnelled packet cannot avoid;</item>
/// <item>HA to MN: <see cref="HomeAgentDataPlane.FromHomeLink"/> (interception checks, hop limit,
/// <c>engine.SealData</c>) then <see cref="MobileNodeEngine.Receive"/> and
/// <see cref="MobileNodeDataPlane.FromTunnel"/>;</item>
/// <item>MN to HA: <see cref="MobileNodeDataPlane.FromTun"/> then <see cref="HomeAgentEngine.Receive"/>
/// and <see cref="HomeAgentDataPlane.FromTunnel"/> (inner source check, forward verdict).</item>
/// </list>
/// No kernel and no I/O: both engines live in this process, the binding was registered by a
/// completed init and two rekeys over an in-memory queue (so both sides transmit under ordinary
/// dynamic generations, the steady state). The Ratio column is time / floor time in the group;
/// Allocated is per packet (one seal and one open).
/// </summary>
[MemoryDiagnoser]
[Config(typeof(TunnelBenchmarkConfig))]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByParams)]
public class TunnelBenchmarks
{
    private static readonly Ipv6Address HomeAgentAddress = Ipv6Address.Parse("2001:db8:1::2");
    private static readonly Ipv6Address HomeAddress = Ipv6Address.Parse("2001:db8:1::100");
    private static readonly Ipv6Address CareOf = Ipv6Address.Parse("2001:db8:2::100");
    private static readonly Ipv6Address Correspondent = Ipv6Address.Parse("2001:db8:1::10");

    private readonly byte[] _datagram = new byte[2048];
    private readonly byte[] _inner = new byte[2048];
    private readonly byte[] _forward = new byte[2048];

    private SecurityAssociation _sealer = null!;
    private SecurityAssociation _opener = null!;
    private HomeAgentEngine _homeAgent = null!;
    private MobileNodeEngine _mobileNode = null!;
    private HomeAgentDataPlane _homeAgentPlane = null!;
    private MobileNodeDataPlane _mobileNodePlane = null!;
    private byte[] _downstream = [];
    private byte[] _upstream = [];

    [Params(EspSuite.AesGcm256, EspSuite.AesCbc128HmacSha256)]
    public EspSuite Suite { get; set; }

    /// <summary>Octets of the inner IPv6 packet (header included): a small packet and one near the tunnel MTU.</summary>
    [Params(64, 1400)]
    public int InnerLength { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var keyMaterial = Enumerable.Range(7, EspSuites.KeyMaterialLength(Suite)).Select(i => (byte)i).ToArray();
        _sealer = new SecurityAssociation(0x1000, Suite, keyMaterial);
        _opener = new SecurityAssociation(0x1000, Suite, keyMaterial);

        // The clock never moves: lifetimes and deadlines keep the binding alive whatever the run's length.
        var time = new FakeTimeProvider(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var link = new QueueLink();
        var provisioning = new MobileNodeProvisioning(HomeAddress, Enumerable.Range(1, 32).Select(i => (byte)i).ToArray(), new Spi(300), new Spi(301), Suite);
        _homeAgent = new HomeAgentEngine(new HomeAgentOptions { Address = HomeAgentAddress }, time, new SeededKeySource(1), new SeededSpiSource(1),
            link, events: e => _homeAgentPlane?.OnProtocolEvent(e));
        _homeAgent.Provision(provisioning);
        _homeAgentPlane = new HomeAgentDataPlane(_homeAgent, new NoProxy(), new HomeAgentDataPlaneOptions { TimeProvider = time });
        _mobileNode = new MobileNodeEngine(new MobileNodeOptions { Provisioning = provisioning, HomeAgentAddress = HomeAgentAddress, CareOfAddress = CareOf },
            time, link, new InMemoryMobileNodeStateStore(), new SeededKeySource(2));
        _mobileNodePlane = new MobileNodeDataPlane(_mobileNode, HomeAgentAddress, TunnelMtu.EthernetMtu, time);
        var controlInner = new byte[2048];
        link.Attach(HomeAgentAddress, d => _homeAgent.Receive(d, controlInner));
        link.Attach(CareOf, d => _mobileNode.Receive(d, controlInner));

        _mobileNode.Start();
        link.Pump();
        for (int i = 0; i < 2; i++)
        {
            _mobileNode.RequestUpdate();
            link.Pump();
        }

        if (!_homeAgentPlane.IsRegistered(HomeAddress) || _mobileNode.KeyRing.Transmit.Generation.IsInitialization)
        {
            throw new InvalidOperationException("the binding did not register");
        }

        _downstream = EchoRequest(Correspondent, HomeAddress, InnerLength);
        _upstream = EchoRequest(HomeAddress, Correspondent, InnerLength);

        // A benchmark that measured drops would be worthless: every path must end where it should.
        Expect(Floor() == InnerLength, "floor");
        Expect(HomeAgentToMobileNode() == InnerLength, "HA to MN");
        Expect(MobileNodeToHomeAgent() == InnerLength, "MN to HA");
        Expect(_homeAgentPlane.Counters.Tunnelled == 1 && _mobileNodePlane.Counters.Delivered == 1, "HA to MN counters");
        Expect(_mobileNodePlane.Counters.Tunnelled == 1 && _homeAgentPlane.Counters.Forwarded == 1, "MN to HA counters");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _homeAgent.Dispose();
        _mobileNode.Dispose();
        _sealer.Dispose();
        _opener.Dispose();
    }

    /// <summary>ESP seal + open of the inner packet as tunnel-mode payload: no outer header, no engine.</summary>
    [Benchmark(Baseline = true, Description = "floor: ESP seal+open")]
    public int Floor()
    {
        _sealer.Seal(IpProtocol.Ipv6, _downstream, _datagram, out int written);
        _opener.Open(_datagram.AsSpan(0, written), _inner, out int length, out _);
        return length;
    }

    /// <summary>Correspondent to node: intercepted on the home link, tunnelled, opened and delivered by the node.</summary>
    [Benchmark(Description = "HA->MN: FromHomeLink+Receive+FromTunnel")]
    public int HomeAgentToMobileNode()
    {
        var home = _homeAgentPlane.FromHomeLink(_downstream, _datagram);
        var result = _mobileNode.Receive(_datagram.AsSpan(0, home.Length), _inner);
        return _mobileNodePlane.FromTunnel(result, _inner).Length;
    }

    /// <summary>Node to correspondent: read from the tun, tunnelled, opened by the HA and forwarded.</summary>
    [Benchmark(Description = "MN->HA: FromTun+Receive+FromTunnel")]
    public int MobileNodeToHomeAgent()
    {
        var node = _mobileNodePlane.FromTun(_upstream, _datagram);
        var result = _homeAgent.Receive(_datagram.AsSpan(0, node.Length), _inner);
        return _homeAgentPlane.FromTunnel(result, _inner, _forward).Length;
    }

    // The seal halves alone (not [Benchmark]s): a profiling loop subtracts them from the whole paths
    // to split the gap to the floor into its seal and open sides (docs/benchmarks.md, "Data plane").

    /// <summary>The floor's seal alone.</summary>
    public int FloorSeal()
    {
        _sealer.Seal(IpProtocol.Ipv6, _downstream, _datagram, out int written);
        return written;
    }

    /// <summary>The HA's seal side alone: interception checks and SealData.</summary>
    public int HomeAgentSeal() => _homeAgentPlane.FromHomeLink(_downstream, _datagram).Length;

    /// <summary>The MN's seal side alone: tun checks and SealData.</summary>
    public int MobileNodeSeal() => _mobileNodePlane.FromTun(_upstream, _datagram).Length;

    private static void Expect(bool condition, string what)
    {
        if (!condition)
        {
            throw new InvalidOperationException($"{what}: the packet did not make it through the tunnel");
        }
    }

    /// <summary>An Echo Request (RFC 4443 section 4.1) of <paramref name="length"/> octets in all, hop limit 64.</summary>
    private static byte[] EchoRequest(Ipv6Address source, Ipv6Address destination, int length)
    {
        const int EchoHeaderLength = 8;
        var packet = new byte[length];
        new Ipv6Header(0, 0, (ushort)(length - Ipv6Header.Length), IpProtocol.Icmpv6, 64, source, destination).WriteTo(packet);
        var message = packet.AsSpan(Ipv6Header.Length);
        message[0] = (byte)Icmpv6Type.EchoRequest;
        for (int i = EchoHeaderLength; i < message.Length; i++)
        {
            message[i] = (byte)i;
        }

        Icmpv6.WriteChecksum(message, source, destination);
        return packet;
    }

    /// <summary>No home link: the HA's proxy Neighbor Discovery is not part of the per-packet cost.</summary>
    private sealed class NoProxy : IHomeAddressProxy
    {
        public void Add(Ipv6Address homeAddress)
        {
        }

        public void Remove(Ipv6Address homeAddress)
        {
        }
    }

    /// <summary>Carries the control exchange of the setup (BU/BA) between the two engines, queued so neither is re-entered.</summary>
    private sealed class QueueLink : IDatagramSink
    {
        private const int DestinationOffset = 24;
        private readonly Dictionary<Ipv6Address, Action<byte[]>> _endpoints = [];
        private readonly Queue<byte[]> _queue = new();

        public void Attach(Ipv6Address address, Action<byte[]> deliver) => _endpoints[address] = deliver;

        public void Send(ReadOnlySpan<byte> datagram) => _queue.Enqueue(datagram.ToArray());

        public void Pump()
        {
            while (_queue.TryDequeue(out var datagram))
            {
                _endpoints[Ipv6Address.Read(datagram.AsSpan(DestinationOffset, Ipv6Address.Length))](datagram);
            }
        }
    }
}

/// <summary>
/// ShortRun (3 warm-ups, 3 iterations) in process: the build output lives under $MIPKEY_ARTIFACTS,
/// where BenchmarkDotNet's generated project could not find the .csproj, and a run of all twelve
/// cases stays around two minutes.
/// </summary>
public sealed class TunnelBenchmarkConfig : ManualConfig
{
    public TunnelBenchmarkConfig() => AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance));
}
