using Microsoft.Extensions.Time.Testing;
using MipKeyAgent.Protocol.HomeAgent;
using MipKeyAgent.Protocol.Keys;
using MipKeyAgent.Protocol.MobileNode;
using MipKeyAgent.Wire;

using MipKeyAgent.Protocol;
using MipKeyAgent.Simulation;

namespace MipKeyAgent.Tools.Fuzzing;

/// <summary>Which engine a fuzz input is fed to.</summary>
internal enum FuzzTarget : byte
{
    HomeAgent,
    MobileNode,
}

/// <summary>
/// A deterministic HA + MN pair after a short exchange (init, an update, an HA rekey with a
/// Binding Refresh Request, data both ways), with every datagram of that exchange recorded. The
/// same session is rebuilt bit for bit each time (seeded keys and SPIs, an <see cref="EngineDriver"/>
/// whose clock stands still), so a saved input replays against exactly the state it was found in.
/// </summary>
internal sealed class FuzzSession : IDisposable
{
    public static readonly Ipv6Address HomeAgentAddress = Ipv6Address.Parse("2001:db8:1::1");
    public static readonly Ipv6Address CareOf = Ipv6Address.Parse("2001:db8:100::1");
    public static readonly Ipv6Address HomeAddress = Ipv6Address.Parse("2001:db8:2::1");

    private readonly EngineDriver _driver;
    private readonly byte[] _inner = new byte[Ipv6Header.Length + ushort.MaxValue + 4096];

    /// <param name="keySeed">Seed of the HA's key source (another seed: other secrets under the same generation numbers).</param>
    /// <param name="mobileNodeExchangeInFlight">End with the MN's update BU sent but unanswered (so a BA can answer it).</param>
    public FuzzSession(int keySeed = 1, bool mobileNodeExchangeInFlight = false)
    {
        // The clock is never advanced: no timer fires while fuzzing, so state changes only by input.
        _driver = new EngineDriver(new FakeTimeProvider(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero))) { KeepSent = false };
        var time = _driver.Clock;
        var ik = new byte[KeyLengths.Secret];
        for (int i = 0; i < ik.Length; i++)
        {
            ik[i] = (byte)(0xA5 ^ (i * 29));
        }
        var provisioning = new MobileNodeProvisioning(HomeAddress, ik, new Spi(1000), new Spi(1001));
        HomeAgentSink = new RecordingSink(this);
        MobileNodeSink = new RecordingSink(this);
        // No init rate limit: the fuzzer wants every IK packet to reach the ESP open.
        HomeAgent = new HomeAgentEngine(
            new HomeAgentOptions { Address = HomeAgentAddress, SendBindingRefreshRequest = true, InitRateLimit = null },
            time, new SeededKeySource(keySeed), new SeededSpiSource(2), HomeAgentSink);
        HomeAgent.Provision(provisioning);
        MobileNode = new MobileNodeEngine(
            new MobileNodeOptions { Provisioning = provisioning, HomeAgentAddress = HomeAgentAddress, CareOfAddress = CareOf },
            time, MobileNodeSink, new InMemoryMobileNodeStateStore(), new SeededKeySource(3));
        _driver.Attach(HomeAgentAddress, LinkDirection.ToHomeAgent, (byte[] d) => Deliver(FuzzTarget.HomeAgent, d));
        _driver.Attach(CareOf, LinkDirection.ToMobileNode, (byte[] d) => Deliver(FuzzTarget.MobileNode, d));

        MobileNode.Start();
        Pump();
        Data();
        MobileNode.RequestUpdate();
        Pump();
        Data();
        HomeAgent.RequestRekey(HomeAddress);
        Pump();
        Data();
        Data();
        if (HomeAgent.GetNode(HomeAddress)!.Newest != MobileNode.View.Newest)
        {
            throw new InvalidOperationException("the fuzz session did not converge");
        }
        // From here on, what the engines send is counted, not delivered (and not kept).
        HomeAgentSink.Recording = false;
        MobileNodeSink.Recording = false;
        if (mobileNodeExchangeInFlight)
        {
            MobileNode.RequestUpdate();
        }
    }

    public HomeAgentEngine HomeAgent { get; }

    public MobileNodeEngine MobileNode { get; }

    public RecordingSink HomeAgentSink { get; }

    public RecordingSink MobileNodeSink { get; }

    /// <summary>Every datagram of the exchange, with the engine it was delivered to.</summary>
    public List<(byte[] Datagram, FuzzTarget Target)> Recorded { get; } = [];

    /// <summary>
    /// Every control datagram of the exchange decrypted (with the receiver's keys at the time it
    /// was delivered): the re-seal class's templates.
    /// </summary>
    public List<ResealTemplate> Plaintexts { get; } = [];

    /// <summary>The key ring an engine receives with.</summary>
    public KeyRing RingOf(FuzzTarget target) =>
        target == FuzzTarget.HomeAgent ? HomeAgent.GetKeyRing(HomeAddress)! : MobileNode.KeyRing;

    public ReceiveResult Feed(FuzzTarget target, ReadOnlySpan<byte> datagram) =>
        target == FuzzTarget.HomeAgent ? HomeAgent.Receive(datagram, _inner) : MobileNode.Receive(datagram, _inner);

    private void Data()
    {
        var inner = new byte[Ipv6Header.Length + 24];
        new Ipv6Header(0, 0, 24, IpProtocol.NoNextHeader, 64, HomeAddress, Ipv6Address.Parse("2001:db8:ff::1")).WriteTo(inner);
        var buffer = new byte[256];
        if (MobileNode.SealData(inner, buffer, out int up) == SealResult.Ok)
        {
            _driver.Send(buffer.AsSpan(0, up));
        }
        if (HomeAgent.SealData(HomeAddress, inner, buffer, out int down) == SealResult.Ok)
        {
            _driver.Send(buffer.AsSpan(0, down));
        }
        Pump();
    }

    private void Pump()
    {
        _driver.Pump();
        if (_driver.Unroutable != 0)
        {
            throw new InvalidOperationException("the fuzz session sent a packet to an address it does not have");
        }
    }

    private void Deliver(FuzzTarget target, byte[] datagram)
    {
        Recorded.Add((datagram, target));
        if (Resealer.TryDecrypt(RingOf(target), target, datagram) is { } template)
        {
            Plaintexts.Add(template);
        }
        var result = Feed(target, datagram);
        if (result.IsDropped)
        {
            throw new InvalidOperationException($"the fuzz session dropped its own packet: {result.Reason}");
        }
    }

    public void Dispose()
    {
        HomeAgent.Dispose();
        MobileNode.Dispose();
    }

    /// <summary>Counts what an engine sends; during the recorded exchange it also puts it on the driver's link.</summary>
    internal sealed class RecordingSink(FuzzSession session) : IDatagramSink
    {
        public int Count { get; private set; }

        public bool Recording { get; set; } = true;

        public void Send(ReadOnlySpan<byte> datagram)
        {
            Count++;
            if (Recording)
            {
                session._driver.Send(datagram);
            }
        }
    }
}
