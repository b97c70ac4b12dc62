namespace MipKeyAgent.Store.Tests;

/// <summary>The HA engine on the SQLite store across process restarts: state, replay windows, retired SPIs, write ordering.</summary>
public sealed class SqliteEngineRestartTests : IDisposable
{
    private readonly StoreDirectory _directory = new();

    [Fact]
    public void RestartMidRekey_KeyDistributionLost_ConvergesWithoutReinit()
    {
        using var bed = new StoreTestbed(_directory);
        bed.Start();
        Assert.Equal(new Generation(1), bed.MobileNode.View.Newest);
        bed.Driver.DropNext(StoreTestbed.CareOf);
        bed.MobileNode.RequestUpdate();
        bed.Driver.Pump();
        Assert.Equal(new Generation(2), bed.View.Newest);
        Assert.False(bed.View.NewestConfirmed);

        bed.RestartHomeAgent();
        Assert.Equal(new Generation(2), bed.View.Newest);
        Assert.False(bed.View.NewestConfirmed);
        bed.Run(TimeSpan.FromSeconds(10));

        Assert.Equal(new Generation(2), bed.MobileNode.View.Newest);
        Assert.Equal(new Generation(2), bed.View.Newest);
        Assert.Equal(0, bed.HomeAgent.Counters.Inits);
        Assert.Equal(1, bed.HomeAgent.Counters.Resends);
        Assert.Equal(0, bed.MobileNode.Counters.ReInits);
        // The node now transmits under g2: its first packet confirms g2 at the restarted HA.
        Assert.Equal(ReceiveOutcome.Data, bed.DeliverToHomeAgent(bed.SealFromNode()).Outcome);
        Assert.True(bed.View.NewestConfirmed);
    }

    [Fact]
    public void ReplayedBindingUpdate_AfterRestart_DroppedAsReplayNoStateChange()
    {
        using var bed = new StoreTestbed(_directory);
        bed.Start();
        bed.MobileNode.RequestUpdate();
        bed.Driver.Pump();
        var update = bed.LastTo(StoreTestbed.HomeAgentAddress);
        bed.RestartHomeAgent();
        var before = bed.View;
        int sent = bed.Driver.Sent.Count;

        var result = bed.DeliverToHomeAgent(update);

        Assert.Equal(DropReason.Replay, result.Reason);
        Assert.Equal(1, bed.HomeAgent.Counters.Dropped(DropReason.Replay));
        Assert.Equal(before, bed.View);
        Assert.Equal(sent, bed.Driver.Sent.Count);
    }

    [Fact]
    public void ReplayedInitRequest_BeforeAndAfterRestart_DroppedAsReplayNeverAnswered()
    {
        using var bed = new StoreTestbed(_directory);
        bed.Start();
        var init = bed.Driver.Sent.First(d => Transport(d) == StoreTestbed.HomeAgentAddress);
        bed.MobileNode.RequestUpdate();
        bed.Driver.Pump();
        int sent = bed.Driver.Sent.Count;
        var before = bed.View;

        Assert.Equal(DropReason.Replay, bed.DeliverToHomeAgent(init).Reason);
        bed.RestartHomeAgent();
        var result = bed.DeliverToHomeAgent(init);

        Assert.Equal(DropReason.Replay, result.Reason);
        Assert.Equal(before, bed.View);
        Assert.Equal(sent, bed.Driver.Sent.Count);
        Assert.Equal(0, bed.HomeAgent.Counters.Inits);
    }

    [Fact]
    public void ReplayedDataPacket_AfterOrderlyRestart_DroppedAsReplay()
    {
        using var bed = new StoreTestbed(_directory);
        bed.Start();
        var data = bed.SealFromNode();
        Assert.Equal(ReceiveOutcome.Data, bed.DeliverToHomeAgent(data).Outcome);

        bed.RestartHomeAgent(checkpoint: true);

        Assert.Equal(DropReason.Replay, bed.DeliverToHomeAgent(data).Reason);
        Assert.Equal(ReceiveOutcome.Data, bed.DeliverToHomeAgent(bed.SealFromNode()).Outcome);
    }

    [Fact]
    public void ReplayedDataPacket_AfterCrashWithCheckpointEveryPacket_DroppedAsReplay()
    {
        using var bed = new StoreTestbed(_directory, new HomeAgentOptions { Address = StoreTestbed.HomeAgentAddress, ReplayCheckpointInterval = 1 });
        bed.Start();
        var data = bed.SealFromNode();
        Assert.Equal(ReceiveOutcome.Data, bed.DeliverToHomeAgent(data).Outcome);

        bed.RestartHomeAgent(checkpoint: false);

        Assert.Equal(DropReason.Replay, bed.DeliverToHomeAgent(data).Reason);
    }

    [Fact]
    public void RetiredSpis_AfterRestart_StillNotFree()
    {
        using var bed = new StoreTestbed(_directory);
        bed.Start();
        var first = bed.HomeAgent.GetKeyRing(bed.Provisioning.HomeAddress)!.Newest;
        var (mnToHa, haToMn) = (first.SpiMnToHa, first.SpiHaToMn);
        for (int i = 0; i < 3; i++)
        {
            bed.MobileNode.RequestUpdate();
            bed.Driver.Pump();
            bed.DeliverToHomeAgent(bed.SealFromNode());
        }
        Assert.Equal(new Generation(4), bed.View.Newest);

        bed.RestartHomeAgent();

        Assert.False(bed.HomeAgent.Spis.IsLive(mnToHa));
        Assert.False(bed.HomeAgent.Spis.IsFree(mnToHa));
        Assert.False(bed.HomeAgent.Spis.IsFree(haToMn));
        Assert.Equal(4, bed.HomeAgent.Spis.RetiredCount);
    }

    [Fact]
    public void StoreWriteFails_UpdateRequest_NoBindingAcknowledgementLeaves()
    {
        using var bed = new StoreTestbed(_directory);
        bed.Start();
        bed.Driver.DropNext(StoreTestbed.HomeAgentAddress);
        bed.MobileNode.RequestUpdate();
        bed.Driver.Pump();
        var update = bed.LastTo(StoreTestbed.HomeAgentAddress);
        int sent = bed.Driver.Sent.Count;
        // A real SQLite write failure: a second connection installs a trigger that aborts writes.
        using var saboteur = new SqliteConnection($"Data Source={_directory.DatabasePath};Pooling=False");
        saboteur.Open();
        using (var command = saboteur.CreateCommand())
        {
            command.CommandText = "CREATE TRIGGER fail BEFORE INSERT ON bindings BEGIN SELECT RAISE(ABORT, 'disk on fire'); END;";
            command.ExecuteNonQuery();
        }

        var error = Assert.Throws<BindingStoreException>(() => bed.DeliverToHomeAgent(update));

        Assert.Contains("disk on fire", error.Message, StringComparison.Ordinal);
        Assert.Equal(sent, bed.Driver.Sent.Count);
        Assert.Equal(new Generation(1), bed.MobileNode.View.Newest);
        using (var command = saboteur.CreateCommand())
        {
            command.CommandText = "DROP TRIGGER fail;";
            command.ExecuteNonQuery();
        }
        // Once the store works again the node's retransmission is answered with the generation the HA holds.
        bed.Run(TimeSpan.FromSeconds(10));
        Assert.Equal(bed.View.Newest, bed.MobileNode.View.Newest);
        Assert.Equal(new Generation(2), bed.MobileNode.View.Newest);
    }

    [Fact]
    public void RestartAfterManyRekeys_HomeAgentTransmitCounter_ResumesAboveEverythingSent()
    {
        using var bed = new StoreTestbed(_directory, new HomeAgentOptions { Address = StoreTestbed.HomeAgentAddress, SequenceReservationBlock = 4 });
        bed.Start();
        for (int i = 0; i < 10; i++)
        {
            bed.MobileNode.RequestUpdate();
            bed.Driver.Pump();
            bed.DeliverToHomeAgent(bed.SealFromNode());
        }
        var transmit = bed.HomeAgent.GetKeyRing(bed.Provisioning.HomeAddress)!.Transmit;
        uint lastSent = transmit.ControlHaToMn.LastSequenceSent;

        bed.RestartHomeAgent();

        var restored = bed.HomeAgent.GetKeyRing(bed.Provisioning.HomeAddress)!.Transmit;
        Assert.Equal(transmit.Generation, restored.Generation);
        Assert.True(restored.ControlHaToMn.LastSequenceSent >= lastSent);
        bed.MobileNode.RequestUpdate();
        bed.Driver.Pump();
        Assert.Equal(bed.View.Newest, bed.MobileNode.View.Newest);
    }

    [Fact]
    public void ImplicitMode_RestartFromTheFile_BuUnderIkNotNewerThanTheInitsSequence_DroppedSilently()
    {
        using var bed = new StoreTestbed(_directory,
            new HomeAgentOptions { Address = StoreTestbed.HomeAgentAddress, Mode = KeyExchangeMode.Implicit });
        bed.Start();
        Assert.Equal(ReceiveOutcome.Data, bed.DeliverToHomeAgent(bed.SealFromNode()).Outcome);
        ushort initSequence = bed.View.LastSequence!.Value;

        bed.RestartHomeAgent();
        int sent = bed.Driver.Sent.Count;
        var result = bed.DeliverToHomeAgent(BindingUpdateUnderInitializationKey(bed, initSequence));

        // PROTOCOL.md 8.7 after a restart as before it: a silent drop, not a 135 answer.
        Assert.Equal(DropReason.StaleEpoch, result.Reason);
        Assert.Equal(sent, bed.Driver.Sent.Count);
        Assert.Equal(0, bed.HomeAgent.Counters.SequenceOutOfWindow);
        Assert.Equal(new Generation(1), bed.View.Newest);
    }

    /// <summary>A BU (home registration, sequence <paramref name="sequence"/>) sealed under the node's IK control SA.</summary>
    private static byte[] BindingUpdateUnderInitializationKey(StoreTestbed bed, ushort sequence)
    {
        var mh = new byte[Wire.MobilityHeader.MaximumLength];
        var writer = new Wire.MobilityHeaderWriter(mh);
        writer.BeginBindingUpdate(sequence, Wire.BindingUpdateFlags.Acknowledge | Wire.BindingUpdateFlags.HomeRegistration, 105);
        writer.WriteAlternateCareOfAddress(StoreTestbed.CareOf);
        int length = writer.Finish();
        Wire.MobilityHeader.WriteChecksum(mh.AsSpan(0, length), bed.Provisioning.HomeAddress, StoreTestbed.HomeAgentAddress);
        // IPv6 / Destination Options {Home Address} / ESP / MH, as the node sends it (PROTOCOL.md section 2).
        var datagram = new byte[2048];
        int espOffset = Wire.Ipv6Header.Length + Wire.ExtensionHeaders.WriteHomeAddressOption(
            datagram.AsSpan(Wire.Ipv6Header.Length), Wire.IpProtocol.Esp, bed.Provisioning.HomeAddress);
        Assert.True(bed.MobileNode.KeyRing.Initialization.ControlMnToHa.Seal(Wire.IpProtocol.Mobility, mh.AsSpan(0, length),
            datagram.AsSpan(espOffset), out int espLength).IsOk);
        new Wire.Ipv6Header(0, 0, (ushort)(espOffset - Wire.Ipv6Header.Length + espLength),
            Wire.IpProtocol.DestinationOptions, 64, StoreTestbed.CareOf, StoreTestbed.HomeAgentAddress).WriteTo(datagram);
        return datagram[..(espOffset + espLength)];
    }

    private static MipKeyAgent.Wire.Ipv6Address Transport(byte[] datagram) => MipKeyAgent.Simulation.EngineDriver.DestinationOf(datagram);

    public void Dispose() => _directory.Dispose();
}
