namespace MipKeyAgent.Protocol.Tests.Scenarios;

/// <summary>Scenarios: the home agent restarts, with or without its stored state (PROTOCOL.md section 6, FIG. 16).</summary>
public sealed class HomeAgentKeyLossTests
{
    [Fact]
    public void HomeAgentLosesAllKeys_NodeReinitializesAfterThreeUnansweredRetransmissions()
    {
        using var bed = Testbed.Started();
        bed.Update();
        bed.AssertDataFlows();

        bed.RestartHomeAgent(keepState: false);
        // Refresh at 315 s goes unanswered (unknown SPI: silent drop), then 1 + 2 + 4 + 8 s of retransmissions.
        bed.Run(TimeSpan.FromSeconds(315 + 14));
        Assert.Equal(3, bed.Node.Engine.Counters.Retransmissions);
        Assert.Equal(0, bed.Node.Engine.Counters.ReInits);
        Assert.Equal(4, bed.HomeAgent.Counters.Dropped(DropReason.UnknownSpi));
        bed.Run(TimeSpan.FromSeconds(1.5));

        Assert.Equal(1, bed.Node.Engine.Counters.ReInits);
        Assert.Equal(2UL, bed.HomeAgentView().InitEpoch);
        Assert.Equal(new Generation(1), bed.HomeAgentView().Newest);
        Assert.Equal(new Generation(1), bed.Node.View.Newest);
        Assert.Equal(Generation.Initialization, bed.Node.View.Previous);
        Assert.Equal(0, bed.Node.Engine.Counters.Dropped(DropReason.Replay));
        bed.AssertDataFlows();
    }

    [Fact]
    public void HomeAgentLosesAllKeys_DataBeforeReinit_IsTheOnlyLoss()
    {
        using var bed = Testbed.Started();
        bed.AssertDataFlows();
        bed.RestartHomeAgent(keepState: false);

        var up = bed.SealFromNode(bed.Node, bed.InnerPacket(bed.Node));
        Assert.Equal(DropReason.UnknownSpi, bed.DeliverToHomeAgent(up).Reason);
        bed.Node.Engine.MoveTo(bed.Node.CareOf);
        bed.Run(TimeSpan.FromSeconds(16));

        Assert.Equal(1, bed.Node.Engine.Counters.ReInits);
        bed.AssertDataFlows();
    }

    [Fact]
    public void HomeAgentRestartsWithStoredState_KeysBindingAndDataContinue()
    {
        using var bed = Testbed.Started();
        bed.Update();
        bed.AssertDataFlows();
        var before = bed.HomeAgentView();

        bed.RestartHomeAgent(keepState: true);

        var after = bed.HomeAgentView();
        Assert.Equal(before.Newest, after.Newest);
        Assert.Equal(before.Previous, after.Previous);
        Assert.Equal(before.InitEpoch, after.InitEpoch);
        Assert.Equal(before.LastSequence, after.LastSequence);
        Assert.Equal(bed.Node.CareOf, after.CareOfAddress);
        bed.AssertDataFlows();
        bed.Update();
        Assert.Equal(new Generation(3), bed.Node.View.Newest);
        Assert.Equal(0, bed.Node.Engine.Counters.DroppedTotal);
        bed.AssertDataFlows();
    }
}
