using MipKeyAgent.Tools.Fuzzing;

namespace MipKeyAgent.Protocol.Tests.Scenarios;

/// <summary>
/// PROTOCOL.md section 8.1: "a counter may start above 1 (a sender resuming from a reservation);
/// receivers accept that". Both directions of IK, with the receiver's window at its start.
/// </summary>
public sealed class CounterResumptionTests
{
    [Fact]
    public void HomeAgentIkReservationFarAboveOne_NodeInitializes_NodeAcceptsTheKeyDistribution()
    {
        using var bed = new Testbed();
        bed.HomeAgentStore.SaveInitializationSequenceReserved(bed.Node.HomeAddress, 1_000_000);
        bed.RestartHomeAgent(keepState: false);

        bed.Start();

        Assert.Equal(new Generation(1), bed.Node.View.Newest);
        var answer = bed.Driver.Sent.Single(d => EngineDriver.DestinationOf(d) == bed.Node.CareOf);
        Assert.True(EngineFuzzer.TryEspIdentity(answer, out uint spi, out uint sequence));
        Assert.Equal(bed.Node.Provisioning.SpiHaToMn.Value, spi);
        Assert.Equal(1_000_001u, sequence);
        bed.AssertDataFlows();
    }

    [Fact]
    public void NodeIkReservationFarAboveOne_NodeInitializes_HomeAgentAcceptsTheInit()
    {
        using var bed = new Testbed();
        bed.Node.Store.Save(new MobileNodeState(4, 9, 2_000_000), null);
        bed.RestartNode(bed.Node);

        bed.Start();

        Assert.Equal(1, bed.HomeAgent.Counters.Inits);
        Assert.Equal(new Generation(1), bed.Node.View.Newest);
        var init = bed.Driver.Sent.First(d => EngineDriver.DestinationOf(d) == Testbed.HomeAgentAddress);
        Assert.True(EngineFuzzer.TryEspIdentity(init, out uint spi, out uint sequence));
        Assert.Equal(bed.Node.Provisioning.SpiMnToHa.Value, spi);
        Assert.Equal(2_000_001u, sequence);
        bed.AssertDataFlows();
    }
}
