using MipKeyAgent.Protocol;
using MipKeyAgent.Protocol.Keys;
using MipKeyAgent.Simulation;
using MipKeyAgent.Transport;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Transport.Tests.Simulation;

public sealed class SimulationWorldTests
{
    [Fact]
    public void PerfectLink_TwoNodesWithRekeys_EveryDataPacketDelivered()
    {
        using var world = new SimulationWorld(new SimulationOptions
        {
            Seed = 3,
            NodeCount = 2,
            NodeRekeyInterval = TimeSpan.FromSeconds(10),
            DataInterval = TimeSpan.FromMilliseconds(250),
        });

        world.Run(TimeSpan.FromSeconds(61));

        Assert.Equal(0, world.Data.FailedToDecrypt + world.Data.LostToLink + world.Data.Corrupted);
        Assert.True(world.Data.Delivered > 900, world.Data.ToString());
        Assert.True(world.Data.InFlight <= 4);
        foreach (var node in world.Nodes)
        {
            Assert.True(node.Engine!.View.Newest >= new Generation(6), node.Engine.View.ToString());
        }
        Assert.Contains(world.Events, e => e.Protocol == ProtocolEventKind.KeyInstalled && e.Node == "mn2");
    }

    [Fact]
    public void SameSeed_SameRun_IdenticalEventLog()
    {
        static string[] RunOnce()
        {
            using var world = new SimulationWorld(new SimulationOptions
            {
                Seed = 11,
                Link = new LinkProfile(new LinkFaults { Loss = 0.3, Jitter = TimeSpan.FromMilliseconds(50) }, new LinkFaults { Loss = 0.3, Duplication = 0.2 }),
                NodeRekeyInterval = TimeSpan.FromSeconds(5),
            });
            world.Schedule(TimeSpan.FromSeconds(20), "crash ha", w => w.CrashHomeAgent(keepState: false, TimeSpan.FromSeconds(2)));
            world.Run(TimeSpan.FromSeconds(90));
            return world.Events.Select(e => e.ToString()).Append(world.Data.ToString()).ToArray();
        }

        Assert.Equal(RunOnce(), RunOnce());
    }

    [Fact]
    public void HomeAgentCrashWithoutState_NodeReinitializesAndDataFlowsAgain()
    {
        using var world = new SimulationWorld(new SimulationOptions { Seed = 5, BindingLifetime = TimeSpan.FromSeconds(40) });
        world.Run(TimeSpan.FromSeconds(10));
        var lossesBefore = world.Data.FailedToDecrypt;

        world.CrashHomeAgent(keepState: false, TimeSpan.FromSeconds(1));
        // Refresh at 30 s, three unanswered retransmissions (1 + 2 + 4 + 8 s), then the re-init.
        world.Run(TimeSpan.FromSeconds(50));

        Assert.Equal(0, lossesBefore);
        Assert.Equal(1, world.Nodes[0].Engine!.Counters.ReInits);
        Assert.Equal(1, world.HomeAgentStateEpoch);
        Assert.Contains(world.Events, e => e.Kind == SimulationEventKind.Crashed && e.Detail == "state lost");
        var delivered = world.Data.Delivered;
        var failed = world.Data.FailedToDecrypt;
        world.Run(TimeSpan.FromSeconds(10));
        Assert.Equal(failed, world.Data.FailedToDecrypt);
        Assert.True(world.Data.Delivered >= delivered + 18);
    }

    [Fact]
    public void NodeCrashWithState_ReinitializesWithHigherEpoch()
    {
        using var world = new SimulationWorld(new SimulationOptions { Seed = 8 });
        world.Run(TimeSpan.FromSeconds(5));
        ulong epoch = world.Nodes[0].Engine!.View.InitEpoch;

        world.CrashMobileNode(0, keepState: true, TimeSpan.FromSeconds(2));
        Assert.False(world.Nodes[0].IsUp);
        world.Run(TimeSpan.FromSeconds(5));

        Assert.True(world.Nodes[0].IsUp);
        Assert.Equal(epoch + 1, world.Nodes[0].Engine!.View.InitEpoch);
        Assert.False(world.Nodes[0].Engine!.View.AwaitingInit);
        Assert.Equal(world.HomeAgent!.GetNode(world.Nodes[0].HomeAddress)!.Newest, world.Nodes[0].Engine!.View.Newest);
        Assert.True(world.Data.LostToCrash > 0);
    }

    [Fact]
    public void NodeCrashWithStateAndKeys_ContinuesUnderStoredKeysWithoutInit()
    {
        using var world = new SimulationWorld(new SimulationOptions { Seed = 8 });
        world.Run(TimeSpan.FromSeconds(5));
        var before = world.Nodes[0].Engine!.View;

        world.CrashMobileNode(0, keepState: true, TimeSpan.FromSeconds(2), keepKeys: true);
        world.Run(TimeSpan.FromSeconds(5));

        var after = world.Nodes[0].Engine!.View;
        Assert.Equal(before.InitEpoch, after.InitEpoch);
        Assert.True(after.Newest >= before.Newest);
        Assert.False(after.AwaitingInit);
        Assert.Equal(world.HomeAgent!.GetNode(world.Nodes[0].HomeAddress)!.Newest, after.Newest);
        Assert.Equal(before.InitEpoch, world.HomeAgent!.GetNode(world.Nodes[0].HomeAddress)!.InitEpoch);
    }

    [Fact]
    public void CaptureTo_WritesEveryLinkDatagramAsIpv6Pcap()
    {
        using var stream = new MemoryStream();
        long sent;
        using (var world = new SimulationWorld(new SimulationOptions { Seed = 2 }))
        {
            world.CaptureTo(stream);
            world.Run(TimeSpan.FromSeconds(5));
            sent = world.Link.Counters.Sent;
        }

        stream.Position = 0;
        Assert.True(CaptureFileReader.TryOpen(stream, out var reader).IsOk);
        using (reader)
        {
            int records = 0;
            DateTimeOffset last = default;
            while (reader!.TryReadNext(out var record, out bool end).IsOk && !end)
            {
                Assert.Equal(PcapLinkType.Ipv6, record.LinkType);
                Assert.True(Ipv6Datagram.TryParse(record.Data.Span, out _).IsOk);
                Assert.True(record.Timestamp >= last);
                last = record.Timestamp;
                records++;
            }
            Assert.Equal(sent, records);
            Assert.True(records > 10);
        }
    }

    [Fact]
    public void DropBindingAcknowledgements_NodeKeepsRetryingThenRecoversWhenLifted()
    {
        using var world = new SimulationWorld(new SimulationOptions { Seed = 9, NodeRekeyInterval = TimeSpan.FromSeconds(5) });
        world.Run(TimeSpan.FromSeconds(3));
        world.SetFaults(LinkProfile.Perfect() with { DropBindingAcknowledgements = true });
        world.Run(TimeSpan.FromSeconds(40));
        Assert.True(world.Link.Counters.BindingAcknowledgementsDropped >= 4);
        Assert.True(world.Nodes[0].Engine!.Counters.ReInits >= 1);

        world.SetFaults(LinkProfile.Perfect());
        world.Run(TimeSpan.FromSeconds(40));

        var view = world.Nodes[0].Engine!.View;
        Assert.False(view.AwaitingInit);
        Assert.Equal(world.HomeAgent!.GetNode(world.Nodes[0].HomeAddress)!.Newest, view.Newest);
    }
}

public sealed class SimulationWorldApiTests
{
    [Fact]
    public void Step_NoDataAndNothingPending_ReturnsNull()
    {
        using var world = new SimulationWorld(new SimulationOptions { DataInterval = null, BindingLifetime = TimeSpan.FromSeconds(400) });
        world.Run(TimeSpan.FromSeconds(1));
        // Idle: the only deadlines left are the refresh (300 s) and the binding expiry.
        var next = world.NextEventTime;
        Assert.NotNull(next);
        Assert.True(next >= world.Clock.Start.AddSeconds(300));

        using var empty = new SimulationWorld(new SimulationOptions { DataInterval = null });
        empty.Start();
        var steps = new List<SimulationStep>();
        while (empty.Step() is { } step && step.Time < empty.Clock.Start.AddSeconds(1))
        {
            steps.Add(step);
        }
        Assert.Contains(steps, s => s.Kind == SimulationStepKind.Arrival && s.Node == -1);
        Assert.Contains(steps, s => s.Kind == SimulationStepKind.Arrival && s.Node == 0 && s.Result is { Outcome: ReceiveOutcome.Control });
    }

    [Fact]
    public void Schedule_ActionsRunInTimeOrderAsTheirOwnSteps()
    {
        using var world = new SimulationWorld(new SimulationOptions { DataInterval = null });
        var ran = new List<(string Name, TimeSpan At)>();
        world.Schedule(TimeSpan.FromSeconds(2), "second", w => ran.Add(("second", w.Elapsed)));
        world.Schedule(TimeSpan.FromSeconds(1), "first", w => ran.Add(("first", w.Elapsed)));

        world.Run(TimeSpan.FromSeconds(3));

        Assert.Equal([("first", TimeSpan.FromSeconds(1)), ("second", TimeSpan.FromSeconds(2))], ran);
        Assert.Equal(2, world.Events.Count(e => e.Kind == SimulationEventKind.Scheduled));
        Assert.Equal(TimeSpan.FromSeconds(3), world.Elapsed);
    }

    [Fact]
    public void Replay_DatagramTheReceiverAccepted_IsDroppedAndCounted()
    {
        using var world = new SimulationWorld(new SimulationOptions { DataInterval = TimeSpan.FromMilliseconds(100) });
        LinkDatagram? delivered = null;
        world.Start();
        while (world.Step() is { } step)
        {
            if (step is { Kind: SimulationStepKind.Arrival, Node: 0, Result.Outcome: ReceiveOutcome.Data })
            {
                delivered = step.Datagram;
                break;
            }
        }
        long sent = world.Link.Counters.Sent;

        var result = world.Replay(delivered!);

        Assert.Equal(DropReason.Replay, result!.Value.Reason);
        Assert.Equal(1, world.Nodes[0].Engine!.Counters.Dropped(DropReason.Replay));
        Assert.Equal(sent, world.Link.Counters.Sent);
    }
}
