namespace MipKeyAgent.Protocol.Tests.Scenarios;

/// <summary>Scenarios: the BA carrying KEY-DIST(N) is lost (FIG. 11-13, 25-27; rule 3).</summary>
public sealed class LostKeyDistributionTests
{
    [Fact]
    public void UpdateAnswerLost_ExplicitResendRequest_SameSecretAndSpisResent()
    {
        using var bed = Testbed.Started();
        bed.AssertDataFlows();
        bed.Driver.DropNext(bed.Node.CareOf);

        bed.Update();
        var issued = bed.HomeAgent.GetKeyRing(bed.Node.HomeAddress)!.Newest;
        Assert.Equal(new Generation(2), issued.Generation);
        Assert.False(issued.Confirmed);
        Assert.Equal(new Generation(1), bed.Node.View.Newest);
        // While the node misses N, both directions keep working on generation 1 (section 4).
        bed.AssertDataFlows();
        bed.QueueData();

        bed.Run(TimeSpan.FromSeconds(1.5));

        Assert.Equal(1, bed.Node.Engine.Counters.Resends);
        Assert.Equal(1, bed.HomeAgent.Counters.Updates);
        Assert.Equal(1, bed.HomeAgent.Counters.Resends);
        Assert.Same(issued, bed.HomeAgent.GetKeyRing(bed.Node.HomeAddress)!.Newest);
        Assert.Equal(issued.SpiMnToHa, bed.Node.Engine.KeyRing.Newest.SpiMnToHa);
        Assert.Equal(issued.SpiHaToMn, bed.Node.Engine.KeyRing.Newest.SpiHaToMn);
        bed.AssertAllQueuedDataDelivered();
        bed.AssertDataFlows();
        Assert.True(issued.Confirmed);
        Assert.Equal(0, bed.HomeAgent.Counters.DroppedTotal);
        Assert.Equal(0, bed.Node.Engine.Counters.DroppedTotal);
    }

    [Fact]
    public void UpdateRequestLost_ResendRequestReachesHomeAgent_GenerationTwoIssuedOnce()
    {
        using var bed = Testbed.Started();
        bed.Driver.DropNext(Testbed.HomeAgentAddress);

        bed.Node.Engine.RequestUpdate();
        bed.Run(TimeSpan.FromSeconds(5));

        Assert.Equal(new Generation(2), bed.Node.View.Newest);
        Assert.Equal(1, bed.HomeAgent.Counters.Updates);
        bed.AssertDataFlows();
    }

    [Fact]
    public void HomeAgentRekeyAnswerLost_ImplicitMode_SpiAloneTriggersResend()
    {
        var settings = new TestbedSettings { Mode = KeyExchangeMode.Implicit, HomeAgentRekey = TimeSpan.FromSeconds(100) };
        using var bed = Testbed.Started(settings);
        Assert.Equal(new Generation(1), bed.Node.View.Newest);
        bed.AssertDataFlows();
        bed.Run(TimeSpan.FromSeconds(101));
        Assert.True(bed.HomeAgentView().RekeyPending);
        bed.Driver.DropNext(bed.Node.CareOf);

        // The node's refresh BU (3/4 of 420 s) consumes the HA's rekey flag; its BA is lost.
        bed.Run(TimeSpan.FromSeconds(214.5));
        Assert.Equal(1, bed.HomeAgent.Counters.Updates);
        Assert.Equal(new Generation(1), bed.Node.View.Newest);
        bed.AssertDataFlows();
        bed.QueueData();
        bed.Run(TimeSpan.FromSeconds(2));

        Assert.Equal(1, bed.HomeAgent.Counters.Resends);
        Assert.Equal(0, bed.Node.Engine.Counters.Resends);
        Assert.Equal(new Generation(2), bed.Node.View.Newest);
        bed.AssertAllQueuedDataDelivered();
        bed.AssertDataFlows();
        Assert.Equal(0, bed.HomeAgent.Counters.DroppedTotal);
        Assert.Equal(0, bed.Node.Engine.Counters.DroppedTotal);
    }
}
