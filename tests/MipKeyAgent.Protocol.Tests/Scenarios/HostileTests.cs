namespace MipKeyAgent.Protocol.Tests.Scenarios;

/// <summary>Hostile basics (PROTOCOL.md section 2 and rule 1): dropped, counted, never answered, no state change.</summary>
public sealed class HostileTests
{
    private static byte[] LastBindingUpdate(Testbed bed) =>
        bed.Driver.Sent.Last(d => EngineDriver.DestinationOf(d) == Testbed.HomeAgentAddress);

    [Fact]
    public void ReplayedBindingUpdate_UpdateRequest_CountedDropAndNoNewGeneration()
    {
        using var bed = Testbed.Started();
        bed.Update();
        var update = LastBindingUpdate(bed);
        var before = bed.HomeAgentView();
        int sent = bed.Driver.Sent.Count;

        var result = bed.DeliverToHomeAgent(update);

        Assert.Equal(DropReason.Replay, result.Reason);
        Assert.Equal(1, bed.HomeAgent.Counters.Dropped(DropReason.Replay));
        Assert.Equal(sent, bed.Driver.Sent.Count);
        Assert.Equal(before, bed.HomeAgentView());
    }

    [Fact]
    public void StaleInitEpoch_FromAnotherInstanceOfTheNode_SilentlyDroppedKeysKept()
    {
        using var bed = Testbed.Started();
        bed.Node.Engine.Reinitialize();
        bed.Driver.Pump();
        Assert.Equal(2UL, bed.HomeAgentView().InitEpoch);
        var before = bed.HomeAgentView();
        // An old copy of the node (epoch store rolled back) whose IK counter is past the HA's window.
        var staleLink = new EngineDriver();
        var stale = new MobileNodeEngine(
            new MobileNodeOptions { Provisioning = bed.Node.Provisioning, HomeAgentAddress = Testbed.HomeAgentAddress, CareOfAddress = bed.Node.CareOf },
            bed.Clock, staleLink, new InMemoryMobileNodeStateStore(new MobileNodeState(0, 500, 1_000_000)), new SeededKeySource(3));
        stale.Start();
        int sent = bed.Driver.Sent.Count;

        var result = bed.DeliverToHomeAgent(staleLink.Sent.Single());

        Assert.Equal(DropReason.StaleEpoch, result.Reason);
        Assert.Equal(1, bed.HomeAgent.Counters.Dropped(DropReason.StaleEpoch));
        Assert.Equal(sent, bed.Driver.Sent.Count);
        Assert.Equal(before, bed.HomeAgentView());
        bed.AssertDataFlows();
        stale.Dispose();
    }

    [Fact]
    public void UnknownSpi_DataPacket_CountedDropNeverAnswered()
    {
        using var bed = Testbed.Started();
        var packet = bed.SealFromNode(bed.Node, bed.InnerPacket(bed.Node));
        // The ESP header follows the 40-octet IPv6 header in tunnel mode; SPI 0x7777 is nobody's.
        packet[40] = 0x80;
        packet[41] = 0;
        packet[42] = 0x77;
        packet[43] = 0x77;
        int sent = bed.Driver.Sent.Count;

        var result = bed.DeliverToHomeAgent(packet);

        Assert.Equal(DropReason.UnknownSpi, result.Reason);
        Assert.Equal(1, bed.HomeAgent.Counters.Dropped(DropReason.UnknownSpi));
        Assert.Equal(sent, bed.Driver.Sent.Count);
    }

    [Fact]
    public void BadIcv_BindingUpdate_CountedDropAndWindowNotAdvanced()
    {
        using var bed = Testbed.Started();
        bed.Driver.DropNext(Testbed.HomeAgentAddress);
        bed.Update();
        var genuine = LastBindingUpdate(bed);
        var forged = (byte[])genuine.Clone();
        forged[^1] ^= 0x01;

        var result = bed.DeliverToHomeAgent(forged);

        Assert.Equal(DropReason.AuthenticationFailed, result.Reason);
        Assert.Equal(new Generation(1), bed.HomeAgentView().Newest);
        // The genuine packet with the same sequence number still opens: the window did not move.
        Assert.Equal(ReceiveOutcome.Control, bed.DeliverToHomeAgent(genuine).Outcome);
        Assert.Equal(new Generation(2), bed.HomeAgentView().Newest);
    }

    [Fact]
    public void BadIcv_BindingAcknowledgement_NodeDropsAndKeepsWaiting()
    {
        using var bed = new Testbed();
        bed.Driver.DropWhen = d => EngineDriver.DestinationOf(d) == bed.Node.CareOf;
        bed.Node.Engine.Start();
        bed.Driver.Pump();
        var ba = bed.Driver.Sent.Last(d => EngineDriver.DestinationOf(d) == bed.Node.CareOf);
        ba[^3] ^= 0x40;

        var result = bed.DeliverToNode(bed.Node, ba);

        Assert.Equal(DropReason.AuthenticationFailed, result.Reason);
        Assert.True(bed.Node.View.AwaitingInit);
        Assert.Equal(Generation.Initialization, bed.Node.View.Newest);
    }

    [Fact]
    public void WrongHomeAddress_BindingUpdateUnderAnotherNodesKey_Dropped()
    {
        using var bed = new Testbed(new TestbedSettings { Nodes = 2 });
        bed.Driver.DropWhen = d => EngineDriver.DestinationOf(d) == Testbed.HomeAgentAddress;
        bed.Nodes[1].Engine.Start();
        bed.Driver.Pump();
        var bu = LastBindingUpdate(bed);
        // Rewrite the HAO (IPv6 40 + DestOpt header 2 + PadN 4 + option header 2 = offset 48) to the other node.
        bed.Nodes[0].HomeAddress.WriteTo(bu.AsSpan(48, 16));
        var from = bed.Nodes[1];

        var result = bed.DeliverToHomeAgent(bu);

        Assert.Equal(DropReason.HomeAddressMismatch, result.Reason);
        Assert.Equal(from.HomeAddress, result.HomeAddress);
    }
}
