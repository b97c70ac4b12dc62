namespace MipKeyAgent.Protocol.Tests.Scenarios;

/// <summary>
/// Once a dynamic generation is confirmed, the HA releases IK's receiving control SA (memory per binding,
/// docs/protocol.md): a captured init BU replayed afterwards is still a replay, and a later
/// re-init derives the SA again and is answered.
/// </summary>
public sealed class InitializationSaReleaseTests
{
    [Fact]
    public void ConfirmedGeneration_IkReceiveSaReleased_ReplayedInitDroppedAndReinitAnswered()
    {
        using var bed = Testbed.Started();
        var init = bed.Driver.Sent.First(d => EngineDriver.DestinationOf(d) == Testbed.HomeAgentAddress);
        bed.AssertDataFlows();
        var ring = bed.HomeAgent.GetKeyRing(bed.Node.HomeAddress)!;
        var ik = ring.Initialization;
        Assert.True(ring.Newest.Confirmed);
        Assert.False(ik.IsBuilt(KeyDirection.MnToHa, data: false));
        // The HA's transmit SA (IK is N-1 after the init) sealed the BAs: it stays built.
        Assert.True(ik.IsBuilt(KeyDirection.HaToMn, data: false));
        Assert.False(ik.SecretIsZeroed());
        var before = bed.HomeAgentView();
        long replays = bed.HomeAgent.Counters.Dropped(DropReason.Replay);

        var replayed = bed.DeliverToHomeAgent(init);

        Assert.Equal(DropReason.Replay, replayed.Reason);
        Assert.Equal(replays + 1, bed.HomeAgent.Counters.Dropped(DropReason.Replay));
        Assert.Equal(before, bed.HomeAgentView());

        bed.Node.Engine.Reinitialize();
        bed.Driver.Pump();
        bed.AssertDataFlows();

        Assert.Equal(2UL, bed.HomeAgentView().InitEpoch);
        Assert.Equal(new Generation(2), bed.HomeAgentView().Newest);
        Assert.True(ring.Newest.Confirmed);
        Assert.False(ik.IsBuilt(KeyDirection.MnToHa, data: false));
    }
}
