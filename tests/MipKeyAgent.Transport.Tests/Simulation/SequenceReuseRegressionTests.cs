using MipKeyAgent.Protocol;
using MipKeyAgent.Simulation;
using MipKeyAgent.Esp;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Transport.Tests.Simulation;

/// <summary>
/// Regressions found by the random-schedule test (seeds 109, 573, 641, 746): in implicit mode a
/// mobile node that installed generation N and sent under it (every packet lost, so N stays
/// unconfirmed) and then initializes again (restart, or re-init after unanswered retransmissions)
/// sends a BU under IK. The HA took it for rule 3 (IK is N-1, N unconfirmed) and sent
/// KEY-DIST(N) again, same secret and SPIs; the node installed N afresh with its ESP counters at
/// zero and sent sequence number 1 under N a second time: a repeated AES-GCM nonce (RFC 4106
/// section 3: never reuse an IV under one key).
/// </summary>
public sealed class SequenceReuseRegressionTests
{
    private static SimulationWorld NewWorld(int seed, out HashSet<(uint Spi, uint Sequence)> reused)
    {
        var world = new SimulationWorld(new SimulationOptions
        {
            Seed = seed,
            Mode = KeyExchangeMode.Implicit,
            HomeAgentRekeyInterval = TimeSpan.FromSeconds(100),
            BindingLifetime = TimeSpan.FromSeconds(16),
            DataInterval = TimeSpan.FromMilliseconds(200),
        });
        var seen = new HashSet<(uint, uint)>();
        var repeated = new HashSet<(uint, uint)>();
        world.DatagramSent += (direction, datagram) =>
        {
            if (Ipv6Datagram.TryParse(datagram, out var parsed).IsOk && parsed.UpperProtocol == IpProtocol.Esp
                && SecurityAssociation.TryPeekSpi(parsed.GetUpper(datagram), out uint spi, out uint sequence).IsOk && !seen.Add((spi, sequence)))
            {
                repeated.Add((spi, sequence));
            }
        };
        reused = repeated;
        return world;
    }

    private static LinkProfile UplinkLost => new(new LinkFaults { Loss = 1.0 }, LinkFaults.Perfect(TimeSpan.FromMilliseconds(10)));

    [Fact]
    public void ImplicitMode_NodeRestartsWhileItsGenerationIsUnconfirmed_NeverRepeatsAnEspSequenceNumber()
    {
        using var world = NewWorld(109, out var reused);
        world.Run(TimeSpan.FromMilliseconds(100));
        Assert.False(world.Nodes[0].Engine!.View.AwaitingInit);
        world.SetFaults(UplinkLost);
        world.Run(TimeSpan.FromSeconds(1));
        Assert.False(world.HomeAgent!.GetNode(world.Nodes[0].HomeAddress)!.NewestConfirmed);

        world.CrashMobileNode(0, keepState: true, TimeSpan.Zero);
        world.SetFaults(LinkProfile.Perfect());
        world.Run(TimeSpan.FromSeconds(3));

        Assert.Empty(reused);
        Assert.True(world.HomeAgent!.GetNode(world.Nodes[0].HomeAddress)!.NewestConfirmed);
    }

    [Fact]
    public void ImplicitMode_NodeReinitializesWhileItsGenerationIsUnconfirmed_NeverRepeatsAnEspSequenceNumber()
    {
        using var world = NewWorld(573, out var reused);
        world.Run(TimeSpan.FromMilliseconds(100));
        world.SetFaults(UplinkLost);
        // Refresh at 12 s, then 1 + 2 + 4 + 8 s of unanswered retransmissions: the re-init leaves at 27 s.
        world.Run(TimeSpan.FromSeconds(27.5));
        Assert.Equal(1, world.Nodes[0].Engine!.Counters.ReInits);

        world.SetFaults(LinkProfile.Perfect());
        world.Run(TimeSpan.FromSeconds(40));

        Assert.Empty(reused);
        Assert.False(world.Nodes[0].Engine!.View.AwaitingInit);
    }
}
