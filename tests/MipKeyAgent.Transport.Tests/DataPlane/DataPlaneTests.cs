using MipKeyAgent.Protocol.DataPlane;
using MipKeyAgent.Esp;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Transport.Tests.DataPlane;

/// <summary>The two data planes over real engines in memory: interception, decapsulation, checks, Packet Too Big.</summary>
public sealed class DataPlaneTests
{
    private static readonly Ipv6Address Stranger = Ipv6Address.Parse("2001:db8:1::66");

    [Fact]
    public void Registration_FirstBindingUpdate_ProxyStartsForHomeAddressOnce()
    {
        using var bed = new TunnelBed();
        Assert.Empty(bed.Proxy.Calls);

        bed.Start();
        bed.Rekey();

        Assert.Equal([$"add {TunnelBed.HomeAddress}"], bed.Proxy.Calls);
        Assert.True(bed.HomeAgentPlane.IsRegistered(TunnelBed.HomeAddress));
        Assert.Equal(1426, bed.HomeAgentPlane.TunnelMtuOf(TunnelBed.HomeAddress));
    }

    [Fact]
    public void Deregistration_LifetimeZero_ProxyStopsAndInterceptionEnds()
    {
        using var bed = new TunnelBed();
        bed.Start();

        bed.MobileNode.Deregister();
        bed.Driver.Pump();

        Assert.Equal([$"add {TunnelBed.HomeAddress}", $"remove {TunnelBed.HomeAddress}"], bed.Proxy.Calls);
        var (home, _, _) = bed.Downstream(TunnelBed.Echo(TunnelBed.Correspondent, TunnelBed.HomeAddress));
        Assert.Equal(DataPlaneDrop.NotRegistered, home.Reason);
    }

    [Fact]
    public void BindingExpiry_NoRefresh_ProxyStops()
    {
        using var bed = new TunnelBed();
        bed.Start();
        bed.Driver.DropWhen = _ => true;

        bed.Clock.Advance(TimeSpan.FromSeconds(421));
        bed.HomeAgent.Tick();

        Assert.Equal($"remove {TunnelBed.HomeAddress}", bed.Proxy.Calls[^1]);
        Assert.False(bed.HomeAgentPlane.IsRegistered(TunnelBed.HomeAddress));
    }

    [Fact]
    public void FromHomeLink_RegisteredHomeAddress_NodeGetsSamePacketOneHopLater()
    {
        using var bed = new TunnelBed();
        bed.Start();
        var echo = TunnelBed.Echo(TunnelBed.Correspondent, TunnelBed.HomeAddress);

        var (home, node, delivered) = bed.Downstream(echo);

        Assert.Equal(DataPlaneVerdict.Tunnel, home.Verdict);
        Assert.Equal(echo.Length + TunnelMtu.Overhead(EspSuite.AesGcm256, echo.Length), home.Length);
        Assert.Equal(DataPlaneVerdict.Deliver, node.Verdict);
        var expected = (byte[])echo.Clone();
        expected[7] = 63;
        Assert.Equal(Convert.ToHexString(expected), Convert.ToHexString(delivered));
        Assert.Equal(1, bed.HomeAgentPlane.Counters.Tunnelled);
        Assert.Equal(1, bed.MobileNodePlane.Counters.Delivered);
    }

    [Fact]
    public void FromHomeLink_UnregisteredDestination_DroppedAndCounted()
    {
        using var bed = new TunnelBed();
        bed.Start();

        var (home, _, _) = bed.Downstream(TunnelBed.Echo(TunnelBed.Correspondent, Stranger));

        Assert.Equal(DataPlaneDrop.NotRegistered, home.Reason);
        Assert.Equal(1, bed.HomeAgentPlane.Counters.Dropped(DataPlaneDrop.NotRegistered));
    }

    [Fact]
    public void FromHomeLink_HopLimitOne_DroppedNotTunnelled()
    {
        using var bed = new TunnelBed();
        bed.Start();

        var (home, _, _) = bed.Downstream(TunnelBed.Echo(TunnelBed.Correspondent, TunnelBed.HomeAddress, hopLimit: 1));

        Assert.Equal(DataPlaneDrop.HopLimitExceeded, home.Reason);
        Assert.Equal(0, bed.HomeAgent.Counters.DataSealed);
    }

    [Theory]
    [InlineData(EspSuite.AesGcm256, 1426)]
    [InlineData(EspSuite.AesCbc128HmacSha256, 1406)]
    public void FromHomeLink_LargestFittingPacket_TunnelledWithinLinkMtu(EspSuite suite, int tunnelMtu)
    {
        using var bed = new TunnelBed(suite);
        bed.Start();
        var echo = TunnelBed.Echo(TunnelBed.Correspondent, TunnelBed.HomeAddress, dataLength: tunnelMtu - 48);

        var (home, node, delivered) = bed.Downstream(echo);

        Assert.Equal(DataPlaneVerdict.Tunnel, home.Verdict);
        Assert.True(home.Length <= 1500, $"tunnel datagram of {home.Length}");
        Assert.Equal(DataPlaneVerdict.Deliver, node.Verdict);
        Assert.Equal(tunnelMtu, delivered.Length);
    }

    [Theory]
    [InlineData(EspSuite.AesGcm256, 1426)]
    [InlineData(EspSuite.AesCbc128HmacSha256, 1406)]
    public void FromHomeLink_OneOctetTooBig_PacketTooBigToSourceWithTunnelMtu(EspSuite suite, int tunnelMtu)
    {
        using var bed = new TunnelBed(suite);
        bed.Start();
        var echo = TunnelBed.Echo(TunnelBed.Correspondent, TunnelBed.HomeAddress, dataLength: tunnelMtu - 48 + 1);
        var output = new byte[2000];

        var action = bed.HomeAgentPlane.FromHomeLink(echo, output);

        Assert.Equal(DataPlaneVerdict.PacketTooBig, action.Verdict);
        var error = Icmpv6.TryReadPacketTooBig(output.AsSpan(0, action.Length), out uint mtu, out var invoking);
        Assert.True(error.IsOk, error.ToString());
        Assert.Equal((uint)tunnelMtu, mtu);
        Assert.True(Ipv6Header.TryRead(output, out var header).IsOk);
        Assert.Equal(TunnelBed.HomeAgentAddress, header.Source);
        Assert.Equal(TunnelBed.Correspondent, header.Destination);
        Assert.True(invoking.SequenceEqual(echo.AsSpan(0, 1232)));
        Assert.Equal(0, bed.HomeAgent.Counters.DataSealed);
        Assert.Equal(1, bed.HomeAgentPlane.Counters.PacketTooBigSent);
    }

    [Fact]
    public void FromHomeLink_TooBigIcmpError_NoErrorAboutAnError()
    {
        using var bed = new TunnelBed();
        bed.Start();
        // RFC 4443 section 2.4 (e.1): a Destination Unreachable too big for the tunnel draws no error.
        var unreachable = TunnelBed.Echo(TunnelBed.Correspondent, TunnelBed.HomeAddress, dataLength: 1452);
        unreachable[Ipv6Header.Length] = (byte)Icmpv6Type.DestinationUnreachable;
        Icmpv6.WriteChecksum(unreachable.AsSpan(Ipv6Header.Length), TunnelBed.Correspondent, TunnelBed.HomeAddress);

        var action = bed.HomeAgentPlane.FromHomeLink(unreachable, new byte[2000]);

        Assert.Equal(DataPlaneDrop.TooBigNoError, action.Reason);
        Assert.Equal(0, bed.HomeAgentPlane.Counters.PacketTooBigSent);
    }

    [Fact]
    public void FromHomeLink_ManyTooBig_RateLimitedThenRefilled()
    {
        using var bed = new TunnelBed();
        bed.Start();
        var echo = TunnelBed.Echo(TunnelBed.Correspondent, TunnelBed.HomeAddress, dataLength: 1452);
        var output = new byte[2000];

        var verdicts = Enumerable.Range(0, 12).Select(_ => bed.HomeAgentPlane.FromHomeLink(echo, output).Verdict).ToList();
        bed.Clock.Advance(TimeSpan.FromSeconds(0.5));
        var afterHalfSecond = Enumerable.Range(0, 6).Select(_ => bed.HomeAgentPlane.FromHomeLink(echo, output).Verdict).ToList();

        Assert.Equal(10, verdicts.Count(v => v == DataPlaneVerdict.PacketTooBig));
        Assert.Equal(2, verdicts.Count(v => v == DataPlaneVerdict.Drop));
        Assert.Equal(5, afterHalfSecond.Count(v => v == DataPlaneVerdict.PacketTooBig));
    }

    [Fact]
    public void FromTunnel_ValidReply_ForwardedWithHopLimitDecremented()
    {
        using var bed = new TunnelBed();
        bed.Start();
        var reply = TunnelBed.Echo(TunnelBed.HomeAddress, TunnelBed.Correspondent);

        var (node, home, forwarded) = bed.Upstream(reply);

        Assert.Equal(DataPlaneVerdict.Tunnel, node.Verdict);
        Assert.Equal(DataPlaneVerdict.Forward, home.Verdict);
        var expected = (byte[])reply.Clone();
        expected[7] = 63;
        Assert.Equal(Convert.ToHexString(expected), Convert.ToHexString(forwarded));
    }

    [Fact]
    public void Rule8_8_FirstTunnelledPacketUnderNewGeneration_EngineConfirmsItBeforeTheDataPlaneDecides()
    {
        using var bed = new TunnelBed();
        bed.Start();
        Assert.False(bed.HomeAgent.GetNode(TunnelBed.HomeAddress)!.NewestConfirmed);

        // PROTOCOL.md 8.8: the data plane hands every tunnel datagram to the engine first, which
        // confirms the generation it opened under (whatever the data plane then does with it).
        var (_, home, _) = bed.Upstream(TunnelBed.Echo(TunnelBed.HomeAddress, TunnelBed.Correspondent));

        Assert.Equal(DataPlaneVerdict.Forward, home.Verdict);
        Assert.True(bed.HomeAgent.GetNode(TunnelBed.HomeAddress)!.NewestConfirmed);
        Assert.Equal(1, bed.HomeAgent.Counters.Confirmations);
    }

    [Fact]
    public void FromTunnel_InnerSourceNotHomeAddress_DroppedAndCounted()
    {
        using var bed = new TunnelBed();
        bed.Start();
        // A node (or whoever holds its keys) tunnelling a packet from another address: sealed by
        // the engine directly, past the node's own data plane check.
        var spoofed = TunnelBed.Echo(Stranger, TunnelBed.Correspondent);
        var datagram = new byte[2000];
        Assert.Equal(Protocol.SealResult.Ok, bed.MobileNode.SealData(spoofed, datagram, out int written));

        var (home, _) = bed.DecapsulateAtHomeAgent(datagram.AsSpan(0, written));

        Assert.Equal(DataPlaneDrop.InnerSourceMismatch, home.Reason);
        Assert.Equal(1, bed.HomeAgentPlane.Counters.Dropped(DataPlaneDrop.InnerSourceMismatch));
        Assert.Equal(0, bed.HomeAgentPlane.Counters.Forwarded);
    }

    [Fact]
    public void FromTunnel_LinkLocalDestination_NotForwarded()
    {
        using var bed = new TunnelBed();
        bed.Start();
        var datagram = new byte[2000];
        Assert.Equal(Protocol.SealResult.Ok,
            bed.MobileNode.SealData(TunnelBed.Echo(TunnelBed.HomeAddress, Ipv6Address.Parse("fe80::1")), datagram, out int written));

        var (home, _) = bed.DecapsulateAtHomeAgent(datagram.AsSpan(0, written));

        Assert.Equal(DataPlaneDrop.NotForwardable, home.Reason);
    }

    [Fact]
    public void FromTun_SourceNotHomeAddress_NeverEntersTunnel()
    {
        using var bed = new TunnelBed();
        bed.Start();

        var (node, _, _) = bed.Upstream(TunnelBed.Echo(Ipv6Address.Parse("fe80::99"), TunnelBed.Correspondent));

        Assert.Equal(DataPlaneDrop.InnerSourceMismatch, node.Reason);
        Assert.Equal(0, bed.MobileNode.Counters.DataSealed);
    }

    [Fact]
    public void FromTun_TooBig_PacketTooBigBackToTheStackFromHomeAgentAddress()
    {
        using var bed = new TunnelBed();
        bed.Start();
        var big = TunnelBed.Echo(TunnelBed.HomeAddress, TunnelBed.Correspondent, dataLength: 1452);

        var (node, _, error) = bed.Upstream(big);

        Assert.Equal(DataPlaneVerdict.PacketTooBig, node.Verdict);
        Assert.True(Icmpv6.TryReadPacketTooBig(error, out uint mtu, out _).IsOk);
        Assert.Equal(1426u, mtu);
        Assert.Equal(1426, bed.MobileNodePlane.TunnelMtu);
        Assert.True(Ipv6Header.TryRead(error, out var header).IsOk);
        Assert.Equal(TunnelBed.HomeAgentAddress, header.Source);
        Assert.Equal(TunnelBed.HomeAddress, header.Destination);
    }

    [Fact]
    public void FromTunnel_AtNodeInnerNotForHomeAddress_Dropped()
    {
        using var bed = new TunnelBed();
        bed.Start();
        var datagram = new byte[2000];
        Assert.Equal(Protocol.SealResult.Ok,
            bed.HomeAgent.SealData(TunnelBed.HomeAddress, TunnelBed.Echo(TunnelBed.Correspondent, Stranger), datagram, out int written));
        var inner = new byte[2000];

        var result = bed.MobileNode.Receive(datagram.AsSpan(0, written), inner);
        var action = bed.MobileNodePlane.FromTunnel(result, inner);

        Assert.Equal(DataPlaneDrop.InnerDestinationMismatch, action.Reason);
    }

    [Fact]
    public void BothDirections_AcrossTenRekeys_NoPacketLost()
    {
        using var bed = new TunnelBed();
        bed.Start();
        int delivered = 0;
        int forwarded = 0;

        for (ushort round = 1; round <= 10; round++)
        {
            for (ushort i = 0; i < 5; i++)
            {
                var down = bed.Downstream(TunnelBed.Echo(TunnelBed.Correspondent, TunnelBed.HomeAddress, sequence: (ushort)((round * 10) + i)));
                delivered += down.Node.Verdict == DataPlaneVerdict.Deliver ? 1 : 0;
                var up = bed.Upstream(TunnelBed.Echo(TunnelBed.HomeAddress, TunnelBed.Correspondent, sequence: (ushort)((round * 10) + i)));
                forwarded += up.Home.Verdict == DataPlaneVerdict.Forward ? 1 : 0;
            }

            bed.Rekey();
        }

        Assert.Equal(50, delivered);
        Assert.Equal(50, forwarded);
        Assert.Equal(new Protocol.Keys.Generation(11), bed.MobileNode.View.Newest);
        Assert.Equal(0, bed.HomeAgent.Counters.DroppedTotal);
        Assert.Equal(0, bed.MobileNode.Counters.DroppedTotal);
    }
}
