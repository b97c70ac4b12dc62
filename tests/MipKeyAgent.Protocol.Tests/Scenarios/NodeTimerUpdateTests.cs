namespace MipKeyAgent.Protocol.Tests.Scenarios;

/// <summary>Scenario: the node's rekey timer fires and its next BU carries KEY-UPDATE-REQ (FIG. 8-10, rule 2).</summary>
public sealed class NodeTimerUpdateTests
{
    private static readonly TestbedSettings Settings = new() { NodeRekey = TimeSpan.FromSeconds(60) };

    [Fact]
    public void NodeRekeyTimer_Fires_GenerationTwoIssuedAndHomeAgentTransmitsWithOne()
    {
        using var bed = Testbed.Started(Settings);
        bed.AssertDataFlows();

        bed.Run(TimeSpan.FromSeconds(61));

        Assert.Equal(1, bed.HomeAgent.Counters.Updates);
        Assert.Equal(new Generation(2), bed.Node.View.Newest);
        Assert.Equal(new Generation(1), bed.Node.View.Previous);
        var ha = bed.HomeAgentView();
        Assert.Equal(new Generation(2), ha.Newest);
        Assert.Equal(new Generation(1), ha.Previous);
        Assert.Equal(new Generation(1), ha.Transmit);
        Assert.Equal(3, bed.HomeAgent.GetKeyRing(bed.Node.HomeAddress)!.All().Count());
    }

    [Fact]
    public void NodeRekeyTimer_PacketsQueuedAcrossTwoRekeys_AllDecrypt()
    {
        using var bed = Testbed.Started(Settings);
        bed.QueueData();

        // The update BU and its BA share the link with queued data in both directions.
        bed.Clock.Advance(TimeSpan.FromSeconds(60));
        bed.Node.Engine.Tick();
        bed.QueueData();
        bed.AssertAllQueuedDataDelivered();
        bed.QueueData();
        bed.Clock.Advance(TimeSpan.FromSeconds(60));
        bed.Node.Engine.Tick();
        bed.QueueData();
        bed.AssertAllQueuedDataDelivered();

        Assert.Equal(new Generation(3), bed.Node.View.Newest);
        bed.AssertDataFlows();
        Assert.Equal(0, bed.HomeAgent.Counters.DroppedTotal);
        Assert.Equal(0, bed.Node.Engine.Counters.DroppedTotal);
    }

    [Fact]
    public void NodeRekeyTimer_ManyPeriods_NeverMoreThanIkPlusTwoGenerations()
    {
        using var bed = Testbed.Started(Settings);

        for (int i = 0; i < 5; i++)
        {
            bed.Run(TimeSpan.FromSeconds(60));
            bed.AssertDataFlows();
        }

        Assert.Equal(new Generation(6), bed.Node.View.Newest);
        Assert.Equal(2, bed.HomeAgent.GetKeyRing(bed.Node.HomeAddress)!.DynamicCount);
        Assert.Equal(2, bed.Node.Engine.KeyRing.DynamicCount);
        Assert.Equal(3 * 4, bed.HomeAgent.Spis.Count);
    }
}
