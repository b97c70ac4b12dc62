namespace MipKeyAgent.Protocol.Tests.Scenarios;

/// <summary>Scenario 1 (background FIG. 4-7): a node starts with only IK and gets generation 1.</summary>
public sealed class StartupInitTests
{
    [Fact]
    public void Start_FreshNode_BothSidesHoldGenerationOneAndIk()
    {
        using var bed = Testbed.Started();

        var mn = bed.Node.View;
        Assert.Equal(new Generation(1), mn.Newest);
        Assert.Equal(Generation.Initialization, mn.Previous);
        Assert.Equal(new Generation(1), mn.Transmit);
        Assert.False(mn.AwaitingInit);
        Assert.True(mn.Registered);
        Assert.Equal(1UL, mn.InitEpoch);
        var ha = bed.HomeAgentView();
        Assert.Equal(new Generation(1), ha.Newest);
        Assert.Equal(Generation.Initialization, ha.Previous);
        Assert.Equal(Generation.Initialization, ha.Transmit);
        Assert.Equal(1UL, ha.InitEpoch);
        Assert.Equal(bed.Node.CareOf, ha.CareOfAddress);
        Assert.Equal(1, bed.HomeAgent.Counters.Inits);
        Assert.Equal(1, bed.Node.Engine.Counters.Inits);
        Assert.Equal(1UL, bed.Node.Store.Load().InitEpoch);
    }

    [Fact]
    public void Start_FreshNode_DataFlowsBothWaysAndConfirmsGenerationOne()
    {
        using var bed = Testbed.Started();
        Assert.False(bed.HomeAgentView().NewestConfirmed);

        bed.AssertDataFlows();

        Assert.True(bed.HomeAgentView().NewestConfirmed);
        Assert.Equal(0, bed.HomeAgent.Counters.DroppedTotal);
        Assert.Equal(0, bed.Node.Engine.Counters.DroppedTotal);
    }

    [Fact]
    public void Start_FirstBindingUpdateLost_RetransmittedInitKeepsEpoch()
    {
        using var bed = new Testbed();
        bed.Driver.DropNext(Testbed.HomeAgentAddress);

        bed.Start();
        Assert.True(bed.Node.View.AwaitingInit);
        bed.Run(TimeSpan.FromSeconds(1.5));

        Assert.Equal(1, bed.Node.Engine.Counters.Retransmissions);
        Assert.Equal(1UL, bed.HomeAgentView().InitEpoch);
        Assert.Equal(new Generation(1), bed.Node.View.Newest);
        bed.AssertDataFlows();
    }

    [Fact]
    public void Start_InitAnswerLost_SameEpochRetransmissionGetsSameKey()
    {
        using var bed = new Testbed();
        bed.Driver.DropNext(bed.Node.CareOf);

        bed.Start();
        var issued = bed.HomeAgent.GetKeyRing(bed.Node.HomeAddress)!.Newest;
        bed.Run(TimeSpan.FromSeconds(1.5));

        Assert.Equal(1, bed.HomeAgent.Counters.Inits);
        Assert.Equal(1, bed.HomeAgent.Counters.Resends);
        Assert.Same(issued, bed.HomeAgent.GetKeyRing(bed.Node.HomeAddress)!.Newest);
        Assert.Equal(issued.SpiMnToHa, bed.Node.Engine.KeyRing.Newest.SpiMnToHa);
        bed.AssertDataFlows();
    }
}
