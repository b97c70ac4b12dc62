namespace MipKeyAgent.Protocol.Tests.Scenarios;

/// <summary>Scenarios: an init request from a node the HA still holds keys for (rule 1 with a higher epoch).</summary>
public sealed class ReinitializationTests
{
    [Fact]
    public void Reinitialize_NodeHoldsTwoGenerations_NewGenerationWithIkAndOldSecretsZeroed()
    {
        using var bed = Testbed.Started();
        bed.Update();
        bed.AssertDataFlows();
        var haRing = bed.HomeAgent.GetKeyRing(bed.Node.HomeAddress)!;
        var oldNewest = haRing.Newest;
        var oldPrevious = haRing.Previous!;
        Assert.Equal(new Generation(2), oldNewest.Generation);
        bed.QueueData();

        bed.Node.Engine.Reinitialize();
        bed.QueueData();
        bed.AssertAllQueuedDataDelivered();

        Assert.Equal(2UL, bed.HomeAgentView().InitEpoch);
        Assert.Equal(2UL, bed.Node.Store.Load().InitEpoch);
        Assert.Equal(new Generation(3), bed.Node.View.Newest);
        Assert.Equal(Generation.Initialization, bed.Node.View.Previous);
        Assert.Equal(new Generation(3), bed.HomeAgentView().Newest);
        Assert.Equal(Generation.Initialization, bed.HomeAgentView().Transmit);
        Assert.True(oldNewest.IsDisposed && oldNewest.SecretIsZeroed());
        Assert.True(oldPrevious.IsDisposed && oldPrevious.SecretIsZeroed());
        bed.AssertDataFlows();
    }

    [Fact]
    public void Restart_NodeRebootsWithStoredEpoch_SequenceResyncedThenNewInit()
    {
        using var bed = Testbed.Started();
        for (int i = 0; i < 5; i++)
        {
            bed.Update();
        }
        bed.AssertDataFlows();

        // A node that lost its keys and came back with an older BU sequence number (e.g. restored
        // from an older copy of its store): its init is answered with status 135 under IK first.
        var stale = bed.Node.Store.Load();
        bed.Node.Store.Save(stale with { NextSequence = (ushort)(stale.NextSequence - 3) }, null);
        bed.RestartNode(bed.Node, keepKeys: false);
        bed.Node.Engine.Start();
        bed.Driver.Pump();

        // The stored sequence number is older than the HA's last accepted one: status 135 under IK,
        // the node continues from it and its init goes through with the higher epoch.
        Assert.Equal(1, bed.HomeAgent.Counters.SequenceOutOfWindow);
        Assert.Equal(1, bed.Node.Engine.Counters.SequenceOutOfWindow);
        Assert.Equal(2UL, bed.HomeAgentView().InitEpoch);
        Assert.Equal(new Generation(7), bed.Node.View.Newest);
        Assert.False(bed.Node.View.AwaitingInit);
        bed.AssertDataFlows();
    }

    [Fact]
    public void Restart_NodeReboots_IkSequenceResumesAboveReservation()
    {
        using var bed = Testbed.Started();
        uint reserved = bed.Node.Store.Load().InitializationSequenceReserved;
        Assert.True(reserved > 0);

        bed.RestartNode(bed.Node, keepKeys: false);

        Assert.Equal(reserved, bed.Node.Engine.KeyRing.Initialization.ControlMnToHa.LastSequenceSent);
        bed.Node.Engine.Start();
        bed.Driver.Pump();
        Assert.Equal(0, bed.HomeAgent.Counters.Dropped(DropReason.Replay));
        Assert.Equal(new Generation(2), bed.Node.View.Newest);
    }

    [Fact]
    public void KeySourceUnavailable_Init_NodeKeepsIkAndRetriesAfterRetryAfter()
    {
        using var bed = new Testbed();
        var source = new SeededKeySource(1) { UnavailableFor = 1, RetryAfter = TimeSpan.FromSeconds(5) };
        // Swap in a home agent whose key source is drained for one request.
        bed.HomeAgent.Dispose();
        var ha = new MipKeyAgent.Protocol.HomeAgent.HomeAgentEngine(
            new MipKeyAgent.Protocol.HomeAgent.HomeAgentOptions { Address = Testbed.HomeAgentAddress }, bed.Clock, source,
            new SeededSpiSource(1), bed.Driver);
        ha.Provision(bed.Node.Provisioning);
        var inner = new byte[70000];
        bed.Driver.Attach(Testbed.HomeAgentAddress, d => ha.Receive(d, inner));

        bed.Node.Engine.Start();
        bed.Driver.Pump();
        Assert.Equal(1, ha.Counters.KeySourceUnavailable);
        Assert.Equal(1, bed.Node.Engine.Counters.KeySourceUnavailable);
        Assert.True(bed.Node.View.AwaitingInit);
        Assert.Equal(bed.Clock.GetUtcNow() + TimeSpan.FromSeconds(5), bed.Node.Engine.NextDeadline);

        bed.Clock.Advance(TimeSpan.FromSeconds(5));
        bed.Node.Engine.Tick();
        bed.Driver.Pump();

        Assert.Equal(new Generation(1), bed.Node.View.Newest);
        Assert.Equal(1UL, ha.GetNode(bed.Node.HomeAddress)!.InitEpoch);
        ha.Dispose();
    }
}
