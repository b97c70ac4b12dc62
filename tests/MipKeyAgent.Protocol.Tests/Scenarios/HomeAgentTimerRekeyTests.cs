namespace MipKeyAgent.Protocol.Tests.Scenarios;

/// <summary>Scenarios: the HA's own per-node rekey timer (FIG. 14-15; rules 2 and 7).</summary>
public sealed class HomeAgentTimerRekeyTests
{
    [Fact]
    public void HomeAgentTimer_WithoutRefreshRequest_FlagWaitsForTheNextBindingUpdate()
    {
        using var bed = Testbed.Started(new TestbedSettings { HomeAgentRekey = TimeSpan.FromSeconds(100) });
        bed.AssertDataFlows();

        bed.Run(TimeSpan.FromSeconds(101));
        Assert.True(bed.HomeAgentView().RekeyPending);
        Assert.Equal(new Generation(1), bed.Node.View.Newest);
        Assert.Equal(0, bed.HomeAgent.Counters.BindingRefreshRequests);
        bed.QueueData();

        // The node's refresh BU at 315 s carries no request; the HA's flag makes it a rekey.
        bed.Run(TimeSpan.FromSeconds(215));
        bed.QueueData();

        Assert.Equal(new Generation(2), bed.Node.View.Newest);
        Assert.False(bed.HomeAgentView().RekeyPending);
        Assert.Equal(1, bed.HomeAgent.Counters.Updates);
        bed.AssertAllQueuedDataDelivered();
        bed.AssertDataFlows();
    }

    [Fact]
    public void HomeAgentTimer_WithRefreshRequest_RekeysAtOnce()
    {
        using var bed = Testbed.Started(new TestbedSettings { HomeAgentRekey = TimeSpan.FromSeconds(100), BindingRefreshRequest = true });
        bed.AssertDataFlows();
        bed.QueueData();

        bed.Run(TimeSpan.FromSeconds(100));
        bed.QueueData();

        Assert.Equal(1, bed.HomeAgent.Counters.BindingRefreshRequests);
        Assert.Equal(1, bed.Node.Engine.Counters.BindingRefreshRequests);
        Assert.Equal(new Generation(2), bed.Node.View.Newest);
        Assert.False(bed.HomeAgentView().RekeyPending);
        bed.AssertAllQueuedDataDelivered();
        bed.AssertDataFlows();
    }

    [Fact]
    public void HomeAgentTimer_RefreshRequestLost_SentAgainAfterOneSecondAndRekeys()
    {
        using var bed = Testbed.Started(new TestbedSettings { HomeAgentRekey = TimeSpan.FromSeconds(100), BindingRefreshRequest = true });
        // g1 confirmed now: the HA's timer counts from here (PROTOCOL.md 8.4).
        bed.AssertDataFlows();
        bed.Run(TimeSpan.FromSeconds(99));
        bed.Driver.DropNext(bed.Node.CareOf);

        // 100 s: the timer fires and the BRR is lost; without a retransmission the flag would
        // wait for the node's binding refresh minutes later.
        bed.Run(TimeSpan.FromSeconds(2.5));
        Assert.Equal(1, bed.Driver.Dropped);
        Assert.Equal(2, bed.HomeAgent.Counters.BindingRefreshRequests);
        Assert.Equal(new Generation(2), bed.Node.View.Newest);
        Assert.False(bed.HomeAgentView().RekeyPending);

        // The flag is consumed: no further BRRs.
        bed.Run(TimeSpan.FromSeconds(60));
        Assert.Equal(2, bed.HomeAgent.Counters.BindingRefreshRequests);
        bed.AssertDataFlows();
    }

    [Fact]
    public void HomeAgentTimer_FlagPendingWhenNodeReinitializes_TimerFiresAgainAfterInit()
    {
        using var bed = Testbed.Started(new TestbedSettings { HomeAgentRekey = TimeSpan.FromSeconds(100) });
        bed.AssertDataFlows();
        bed.Run(TimeSpan.FromSeconds(101));
        Assert.True(bed.HomeAgentView().RekeyPending);

        bed.Node.Engine.Reinitialize();
        bed.Driver.Pump();
        Assert.False(bed.HomeAgentView().RekeyPending);
        Assert.Null(bed.HomeAgentView().RekeyDueAt);

        // The init's generation, once confirmed, re-arms the timer (PROTOCOL.md 8.4); with the
        // stale flag cleared it fires 100 s later.
        bed.AssertDataFlows();
        bed.Run(TimeSpan.FromSeconds(101));
        Assert.True(bed.HomeAgentView().RekeyPending);
        bed.AssertDataFlows();
    }

    [Fact]
    public void HomeAgentTimer_FiresAgainWhileNewestUnconfirmed_ResendsNeverIssuesNext()
    {
        using var bed = Testbed.Started(new TestbedSettings { HomeAgentRekey = TimeSpan.FromSeconds(100) });
        bed.AssertDataFlows();
        bed.Run(TimeSpan.FromSeconds(101));
        bed.Driver.DropNext(bed.Node.CareOf);
        bed.Node.Engine.MoveTo(bed.Node.CareOf);
        bed.Driver.Pump();
        Assert.Equal(new Generation(2), bed.HomeAgentView().Newest);
        Assert.False(bed.HomeAgentView().NewestConfirmed);

        bed.HomeAgent.RequestRekey(bed.Node.HomeAddress);
        bed.Run(TimeSpan.FromSeconds(1.5));

        // Rule 5: the retransmitted BU under g1 gets KEY-DIST(2) again, never g3; the flag waits.
        Assert.Equal(new Generation(2), bed.HomeAgentView().HighestIssued);
        Assert.Equal(new Generation(2), bed.Node.View.Newest);
        Assert.True(bed.HomeAgentView().RekeyPending);
        bed.AssertDataFlows();

        bed.Node.Engine.MoveTo(bed.Node.CareOf);
        bed.Driver.Pump();
        Assert.Equal(new Generation(3), bed.Node.View.Newest);
        Assert.False(bed.HomeAgentView().RekeyPending);
        bed.AssertDataFlows();
    }
}
