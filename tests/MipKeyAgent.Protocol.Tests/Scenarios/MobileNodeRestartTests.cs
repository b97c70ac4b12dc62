using MipKeyAgent.Tools.Fuzzing;

namespace MipKeyAgent.Protocol.Tests.Scenarios;

/// <summary>
/// A mobile node restarted from its store continues under its current
/// keys without re-initializing, never sends a (SPI, ESP sequence number) twice, and keeps
/// rejecting packets captured before the restart.
/// </summary>
public sealed class MobileNodeRestartTests
{
    private static int InitsStarted(Testbed bed) => bed.Events.Count(e => e.Kind == ProtocolEventKind.InitStarted);

    [Fact]
    public void Restart_WithStoredKeys_ContinuesUnderThemWithoutInit()
    {
        using var bed = Testbed.Started();
        for (int i = 0; i < 3; i++)
        {
            bed.Update();
        }
        bed.AssertDataFlows();
        Assert.Equal(new Generation(4), bed.Node.View.Newest);
        Assert.Equal(1, InitsStarted(bed));
        long haInits = bed.HomeAgent.Counters.Inits;

        bed.RestartNode(bed.Node);
        Assert.Equal(new Generation(4), bed.Node.View.Newest);
        Assert.Equal(new Generation(3), bed.Node.View.Previous);
        bed.Node.Engine.Start();
        bed.Driver.Pump();

        Assert.Equal(1, InitsStarted(bed));
        Assert.Equal(haInits, bed.HomeAgent.Counters.Inits);
        Assert.Equal(1UL, bed.Node.Store.Load().InitEpoch);
        Assert.True(bed.Node.View.Registered);
        Assert.Contains(bed.Events, e => e.Kind == ProtocolEventKind.StateRestored && e.Generation == new Generation(4));
        bed.AssertDataFlows();
        bed.Update();
        Assert.Equal(new Generation(5), bed.Node.View.Newest);
        bed.AssertDataFlows();
        Assert.Equal(0, bed.HomeAgent.Counters.Dropped(DropReason.Replay));
        Assert.Equal(1, InitsStarted(bed));
    }

    [Fact]
    public void RepeatedRestarts_MidTraffic_NoSequenceNumberSentTwiceUnderOneKey()
    {
        using var bed = Testbed.Started(new TestbedSettings { NodeRekey = TimeSpan.FromSeconds(3) });
        for (int restart = 0; restart < 6; restart++)
        {
            for (int packet = 0; packet < 20; packet++)
            {
                bed.QueueData();
            }
            bed.Run(TimeSpan.FromSeconds(2 + restart));
            bed.RestartNode(bed.Node);
            bed.Node.Engine.Start();
            bed.Driver.Pump();
        }
        bed.Run(TimeSpan.FromSeconds(10));
        bed.AssertDataFlows();

        var sent = new HashSet<(uint, uint)>();
        int duplicates = 0;
        int fromNode = 0;
        foreach (var datagram in bed.Driver.Sent.Where(d => EngineDriver.DestinationOf(d) == Testbed.HomeAgentAddress))
        {
            Assert.True(EngineFuzzer.TryEspIdentity(datagram, out uint spi, out uint sequence));
            fromNode++;
            duplicates += sent.Add((spi, sequence)) ? 0 : 1;
        }
        Assert.True(fromNode > 120, $"only {fromNode} packets from the node");
        Assert.Equal(0, duplicates);
        Assert.Equal(0, bed.HomeAgent.Counters.Dropped(DropReason.Replay));
        Assert.Equal(1, InitsStarted(bed));
        Assert.True(bed.Node.View.Newest.Value >= 5, $"only {bed.Node.View.Newest} after the restarts");
    }

    [Fact]
    public void ReplayedBindingAck_AfterRestart_DroppedAsReplay()
    {
        using var bed = Testbed.Started();
        // The init's BA (KEY-DIST of generation 1, under IK, which both sides keep for good).
        var captured = bed.Driver.Sent.Last(d => EngineDriver.DestinationOf(d) == bed.Node.CareOf);
        bed.Update();
        bed.Update();
        // The last BA (KEY-DIST of generation 3, under generation 2, which the node still holds).
        var capturedUnderNewest = bed.Driver.Sent.Last(d => EngineDriver.DestinationOf(d) == bed.Node.CareOf);

        bed.RestartNode(bed.Node);

        var result = bed.DeliverToNode(bed.Node, capturedUnderNewest);
        Assert.Equal(DropReason.Replay, result.Reason);
        result = bed.DeliverToNode(bed.Node, captured);
        Assert.Equal(DropReason.Replay, result.Reason);
        Assert.Equal(new Generation(3), bed.Node.View.Newest);
    }

    [Fact]
    public void Restart_WhileInitUnanswered_StartsANewInitWithAHigherEpoch()
    {
        using var bed = Testbed.Started();
        bed.Driver.DropNext(bed.Node.CareOf, 1);
        bed.Node.Engine.Reinitialize();
        bed.Driver.Pump();
        Assert.True(bed.Node.Store.Load().AwaitingInit);
        Assert.Equal(2UL, bed.Node.Store.Load().InitEpoch);

        bed.RestartNode(bed.Node);
        bed.Node.Engine.Start();
        bed.Driver.Pump();

        Assert.Equal(3UL, bed.Node.Store.Load().InitEpoch);
        Assert.Equal(3UL, bed.HomeAgentView().InitEpoch);
        Assert.False(bed.Node.View.AwaitingInit);
        Assert.False(bed.Node.Store.Load().AwaitingInit);
        bed.AssertDataFlows();
    }

    [Fact]
    public void Restart_HomeAgentLostTheKeys_NodeFallsBackToInit()
    {
        using var bed = Testbed.Started();
        bed.Update();
        bed.RestartHomeAgent(keepState: false);

        bed.RestartNode(bed.Node);
        bed.Node.Engine.Start();
        bed.Run(TimeSpan.FromSeconds(30));

        // The BU under the restored keys goes unanswered; after the retransmissions the node initializes.
        Assert.Equal(2, InitsStarted(bed));
        Assert.Equal(2UL, bed.HomeAgentView().InitEpoch);
        bed.AssertDataFlows();
    }

    [Fact]
    public void Store_EveryPacket_LeavesOnlyAfterWhatItDependsOnIsStored()
    {
        using var bed = new Testbed();
        var store = bed.Node.Store;
        MobileNodeEngine? engine = null;
        int checkedPackets = 0;
        var sink = new CheckingSink(bed.Driver, () =>
        {
            // As each packet leaves: the next BU sequence number, the epoch, the keys and a
            // reservation covering the packet's sequence number are already in the store.
            var state = store.Load();
            var view = engine!.View;
            var keys = store.LoadKeys();
            try
            {
                Assert.Equal(view.NextSequence, state.NextSequence);
                Assert.Equal(view.InitEpoch, state.InitEpoch);
                Assert.Equal(view.AwaitingInit, state.AwaitingInit);
                if (!view.AwaitingInit)
                {
                    Assert.NotNull(keys);
                    Assert.Equal(view.Newest, keys.Newest.Generation);
                    var newest = engine.KeyRing.Newest;
                    Assert.True(keys.Newest.TransmitSequenceReserved >= Math.Max(newest.ControlMnToHa.LastSequenceSent, newest.DataMnToHa.LastSequenceSent));
                }
                Assert.True(state.InitializationSequenceReserved >= engine.KeyRing.Initialization.ControlMnToHa.LastSequenceSent);
            }
            finally
            {
                keys?.ZeroSecrets();
            }
            checkedPackets++;
        });
        bed.Node.Engine.Dispose();
        engine = new MobileNodeEngine(
            new MobileNodeOptions { Provisioning = bed.Node.Provisioning, HomeAgentAddress = Testbed.HomeAgentAddress, CareOfAddress = bed.Node.CareOf,
                SequenceReservationBlock = 4 },
            bed.Clock, sink, store, new SeededKeySource(5));
        bed.Node.Engine = engine;

        bed.Start();
        for (int i = 0; i < 4; i++)
        {
            bed.Update();
            for (int packet = 0; packet < 10; packet++)
            {
                var buffer = new byte[2048];
                Assert.Equal(SealResult.Ok, engine.SealData(bed.InnerPacket(bed.Node), buffer, out int written));
                sink.Send(buffer.AsSpan(0, written));
            }
            bed.Driver.Pump();
        }

        Assert.Equal(4 * 11 + 1, checkedPackets);
        Assert.Equal(40, bed.HomeAgent.Counters.DataDelivered);
    }

    /// <summary>Runs a check as each packet leaves the node, then passes it on.</summary>
    private sealed class CheckingSink(IDatagramSink next, Action check) : IDatagramSink
    {
        public void Send(ReadOnlySpan<byte> datagram)
        {
            check();
            next.Send(datagram);
        }
    }
}
