namespace MipKeyAgent.Protocol.Tests.Scenarios;

/// <summary>PROTOCOL.md section 8 (revision 1.1), decisions 8.2 to 8.9: one test (or more) per decision, named after it.</summary>
public sealed class RevisionElevenDecisionTests
{
    private const BindingUpdateFlags HomeRegistration = BindingUpdateFlags.Acknowledge | BindingUpdateFlags.HomeRegistration;

    private delegate void OptionWriter(ref MobilityHeaderWriter writer);

    [Fact]
    public void Rule8_2_BindingRefreshRequest_Rh2WithHomeAddressAndEspUnderTheTransmitKey()
    {
        using var bed = Testbed.Started(new TestbedSettings { HomeAgentRekey = TimeSpan.FromSeconds(100), BindingRefreshRequest = true });
        bed.Update();
        bed.AssertDataFlows();
        var ring = bed.HomeAgent.GetKeyRing(bed.Node.HomeAddress)!;
        var transmit = ring.Transmit;
        Assert.Equal(new Generation(1), transmit.Generation);
        var known = new KnownGeneration(transmit.Secret.ToArray(), transmit.SpiMnToHa, transmit.SpiHaToMn);
        int before = bed.Driver.Sent.Count;

        bed.Run(TimeSpan.FromSeconds(100.5));

        var brr = bed.Driver.Sent.Skip(before).First(d => EngineDriver.DestinationOf(d) == bed.Node.CareOf);
        Assert.True(Ipv6Datagram.TryParse(brr, out var parsed).IsOk);
        Assert.Equal(Testbed.HomeAgentAddress, parsed.Header.Source);
        Assert.Equal(bed.Node.HomeAddress, parsed.RoutingHomeAddress);
        Assert.True(SecurityAssociation.TryPeekSpi(parsed.GetUpper(brr), out uint spi, out _).IsOk);
        Assert.Equal(transmit.SpiHaToMn.Value, spi);
        var plain = Assert.Single(ControlPlaintext.Open([brr], [known]));
        Assert.True(MobilityHeader.TryParse(plain, out var mh).IsOk);
        Assert.Equal(MobilityHeaderType.BindingRefreshRequest, mh.Type);
        Assert.True(mh.VerifyChecksum(Testbed.HomeAgentAddress, bed.Node.HomeAddress));
        // The node accepted it and answered: the HA's timer rekey went through.
        Assert.Equal(1, bed.Node.Engine.Counters.BindingRefreshRequests);
        Assert.Equal(new Generation(3), bed.Node.View.Newest);
    }

    [Fact]
    public void Rule8_3_KeyLifetimePassed_NodeKeepsAndUsesTheKey()
    {
        using var bed = Testbed.Started(new TestbedSettings { HomeAgentRekey = TimeSpan.FromSeconds(30) });
        var keyDistribution = KeyDistributionsSentTo(bed).Single();
        Assert.Equal(30u, keyDistribution.KeyLifetimeSeconds);
        bed.AssertDataFlows();

        // Far past the announced lifetime (the HA's flag waits for the node's next BU, no BRR).
        bed.Run(TimeSpan.FromSeconds(200));

        Assert.True(bed.HomeAgentView().RekeyPending);
        Assert.Equal(new Generation(1), bed.Node.View.Newest);
        Assert.Equal(new Generation(1), bed.Node.View.Transmit);
        Assert.NotNull(bed.Node.Engine.KeyRing.Find(new Generation(1)));
        Assert.Equal(0, bed.Node.Engine.Counters.ReInits);
        bed.AssertDataFlows();
        Assert.Equal(0, bed.Node.Engine.Counters.DroppedTotal);
    }

    [Fact]
    public void Rule8_4_HomeAgentRekeyTimer_CountsFromConfirmationNotIssuance()
    {
        using var bed = Testbed.Started(new TestbedSettings { HomeAgentRekey = TimeSpan.FromSeconds(100) });
        Assert.False(bed.HomeAgentView().NewestConfirmed);
        Assert.Null(bed.HomeAgentView().RekeyDueAt);

        bed.Run(TimeSpan.FromSeconds(60));
        bed.AssertDataFlows();
        var confirmedAt = bed.Now;
        Assert.Equal(confirmedAt + TimeSpan.FromSeconds(100), bed.HomeAgentView().RekeyDueAt);

        bed.Run(TimeSpan.FromSeconds(99));
        Assert.False(bed.HomeAgentView().RekeyPending);
        bed.Run(TimeSpan.FromSeconds(2));
        Assert.True(bed.HomeAgentView().RekeyPending);
    }

    [Fact]
    public void Rule8_4_HomeAgentRekeyTimer_AfterUpdate_WaitsForTheNewGenerationsConfirmation()
    {
        using var bed = Testbed.Started(new TestbedSettings { HomeAgentRekey = TimeSpan.FromSeconds(100) });
        bed.AssertDataFlows();
        bed.Run(TimeSpan.FromSeconds(10));
        bed.Update();
        Assert.Equal(new Generation(2), bed.HomeAgentView().Newest);
        Assert.Null(bed.HomeAgentView().RekeyDueAt);

        bed.Run(TimeSpan.FromSeconds(30));
        bed.AssertDataFlows();

        Assert.Equal(bed.Now + TimeSpan.FromSeconds(100), bed.HomeAgentView().RekeyDueAt);
    }

    [Fact]
    public void Rule8_5_NewInitEpochWhileNewestUnconfirmed_NewGenerationNotAResend()
    {
        using var bed = Testbed.Started();
        bed.AssertDataFlows();
        bed.Driver.DropNext(bed.Node.CareOf);
        bed.Update();
        Assert.Equal(new Generation(2), bed.HomeAgentView().Newest);
        Assert.False(bed.HomeAgentView().NewestConfirmed);

        bed.Node.Engine.Reinitialize();
        bed.Driver.Pump();

        var view = bed.HomeAgentView();
        Assert.Equal(new Generation(3), view.Newest);
        Assert.Equal(Generation.Initialization, view.Previous);
        Assert.Equal(2UL, view.InitEpoch);
        Assert.Equal(0, bed.HomeAgent.Counters.Resends);
        Assert.Equal(2, bed.HomeAgent.Counters.Inits);
        Assert.Equal(new Generation(3), bed.Node.View.Newest);
        bed.AssertDataFlows();
    }

    [Fact]
    public void Rule8_6_ResendRequestNamingConfirmedNewest_AnsweredAsUpdate()
    {
        using var bed = Testbed.Started();
        bed.AssertDataFlows();
        // The update BU itself is lost: the HA never issued g2.
        bed.Driver.DropNext(Testbed.HomeAgentAddress);
        bed.Node.Engine.RequestUpdate();

        // The retransmission (KEY-RESEND-REQ naming g1) is answered with KEY-DIST(g2) at once.
        bed.Run(TimeSpan.FromSeconds(1.5));

        Assert.Equal(1, bed.Node.Engine.Counters.Resends);
        Assert.Equal(1, bed.HomeAgent.Counters.Updates);
        Assert.Equal(0, bed.HomeAgent.Counters.Resends);
        Assert.Equal(new Generation(2), bed.Node.View.Newest);
        Assert.Null(bed.Node.View.Exchange);
        bed.AssertDataFlows();

        bed.Run(TimeSpan.FromSeconds(5));
        Assert.Equal(1, bed.HomeAgent.Counters.Updates);
        Assert.Equal(0, bed.HomeAgent.Counters.DroppedTotal);
        Assert.Equal(0, bed.Node.Engine.Counters.DroppedTotal);
    }

    [Fact]
    public void Rule8_6_ResendRequestNamingPreviousWhileNewestUnconfirmed_IsRuleThree()
    {
        using var bed = Testbed.Started();
        bed.AssertDataFlows();
        bed.Driver.DropNext(bed.Node.CareOf);
        bed.Update();
        var issued = bed.HomeAgent.GetKeyRing(bed.Node.HomeAddress)!.Newest;

        bed.Run(TimeSpan.FromSeconds(1.5));

        Assert.Equal(1, bed.Node.Engine.Counters.Resends);
        Assert.Equal(1, bed.HomeAgent.Counters.Updates);
        Assert.Equal(1, bed.HomeAgent.Counters.Resends);
        Assert.Equal(issued.SpiMnToHa, bed.Node.Engine.KeyRing.Newest.SpiMnToHa);
        Assert.Equal(new Generation(2), bed.HomeAgentView().HighestIssued);
    }

    [Fact]
    public void Rule8_7_ImplicitInitUnconfirmed_OlderSequenceStillGetsTheInitAnswer()
    {
        using var bed = new Testbed(new TestbedSettings { Mode = KeyExchangeMode.Implicit });
        // The first init BU is held back (as if overtaken on the path); its retransmission arrives first.
        bed.Driver.DropNext(Testbed.HomeAgentAddress);
        bed.Start();
        var overtaken = bed.Driver.Sent[^1];
        bed.Run(TimeSpan.FromSeconds(1.5));
        var ha = bed.HomeAgentView();
        Assert.Equal(new Generation(1), ha.Newest);
        Assert.False(ha.NewestConfirmed);
        ushort last = ha.LastSequence!.Value;
        var bindingExpires = ha.BindingExpiresAt;
        int sent = bed.Driver.Sent.Count;

        var result = bed.DeliverToHomeAgent(overtaken);

        Assert.Equal(ReceiveOutcome.Control, result.Outcome);
        Assert.Equal(1, bed.HomeAgent.Counters.Resends);
        Assert.Equal(0, bed.HomeAgent.Counters.SequenceOutOfWindow);
        var answer = Assert.Single(KeyDistributionsSentTo(bed, sent));
        Assert.Equal(1u, answer.Generation);
        // An older BU moves neither the binding nor the sequence state.
        Assert.Equal(last, bed.HomeAgentView().LastSequence);
        Assert.Equal(bindingExpires, bed.HomeAgentView().BindingExpiresAt);
        Assert.Equal(1, bed.HomeAgent.Counters.Inits);
    }

    [Fact]
    public void Rule8_7_ImplicitBuUnderIkNotNewerThanTheInitsSequence_DroppedSilently()
    {
        using var bed = Testbed.Started(new TestbedSettings { Mode = KeyExchangeMode.Implicit });
        bed.AssertDataFlows();
        ushort initSequence = bed.HomeAgentView().LastSequence!.Value;
        var ik = bed.Node.Engine.KeyRing.Initialization;
        int sent = bed.Driver.Sent.Count;

        var result = bed.DeliverToHomeAgent(SealBindingUpdate(bed, ik, initSequence));

        Assert.Equal(DropReason.StaleEpoch, result.Reason);
        Assert.Equal(sent, bed.Driver.Sent.Count);
        Assert.Equal(0, bed.HomeAgent.Counters.SequenceOutOfWindow);
        Assert.Equal(new Generation(1), bed.HomeAgentView().Newest);

        // Newer than the sequence number that started the last init: a new init (rule 1).
        result = bed.DeliverToHomeAgent(SealBindingUpdate(bed, ik, unchecked((ushort)(initSequence + 1))));
        Assert.Equal(ReceiveOutcome.Control, result.Outcome);
        Assert.Equal(2, bed.HomeAgent.Counters.Inits);
        Assert.Equal(new Generation(2), bed.HomeAgentView().Newest);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(1000)]
    public void Rule8_7_ImplicitHomeAgentRestartedFromItsStore_BuUnderIkNotNewerThanTheInitsSequence_StillDroppedSilently(int older)
    {
        using var bed = Testbed.Started(new TestbedSettings { Mode = KeyExchangeMode.Implicit });
        bed.AssertDataFlows();
        ushort initSequence = bed.HomeAgentView().LastSequence!.Value;
        Assert.Equal(initSequence, bed.HomeAgentStore.Load(bed.Node.HomeAddress)!.InitSequence);
        var ik = bed.Node.Engine.KeyRing.Initialization;

        bed.RestartHomeAgent(keepState: true);
        int sent = bed.Driver.Sent.Count;
        var result = bed.DeliverToHomeAgent(SealBindingUpdate(bed, ik, unchecked((ushort)(initSequence - older))));

        // Not a 135 answer: the restarted HA still knows which sequence number started the last init.
        Assert.Equal(DropReason.StaleEpoch, result.Reason);
        Assert.Equal(1, bed.HomeAgent.Counters.Dropped(DropReason.StaleEpoch));
        Assert.Equal(sent, bed.Driver.Sent.Count);
        Assert.Equal(0, bed.HomeAgent.Counters.SequenceOutOfWindow);
        Assert.Equal(new Generation(1), bed.HomeAgentView().Newest);
        Assert.Equal(initSequence, bed.HomeAgentView().LastSequence);
        bed.AssertDataFlows();
    }

    [Fact]
    public void Rule8_7_ImplicitHomeAgentRestartedFromItsStore_BuUnderIkNewerThanTheInitsSequence_StartsANewInit()
    {
        using var bed = Testbed.Started(new TestbedSettings { Mode = KeyExchangeMode.Implicit });
        bed.AssertDataFlows();
        ushort initSequence = bed.HomeAgentView().LastSequence!.Value;
        var ik = bed.Node.Engine.KeyRing.Initialization;

        bed.RestartHomeAgent(keepState: true);
        int sent = bed.Driver.Sent.Count;
        ushort newer = unchecked((ushort)(initSequence + 1));
        var result = bed.DeliverToHomeAgent(SealBindingUpdate(bed, ik, newer));

        Assert.Equal(ReceiveOutcome.Control, result.Outcome);
        Assert.Equal(1, bed.HomeAgent.Counters.Inits);
        Assert.Equal(new Generation(2), bed.HomeAgentView().Newest);
        var answer = Assert.Single(KeyDistributionsSentTo(bed, sent));
        Assert.Equal(2u, answer.Generation);
        // The new init's sequence number is what the store now holds (and what the next restart compares with).
        Assert.Equal(newer, bed.HomeAgentStore.Load(bed.Node.HomeAddress)!.InitSequence);
    }

    [Fact]
    public void Rule8_8_DataPacketUnderNewGeneration_ConfirmsItAsABindingUpdateDoes()
    {
        using var bed = Testbed.Started(new TestbedSettings { HomeAgentRekey = TimeSpan.FromSeconds(100) });
        Assert.False(bed.HomeAgentView().NewestConfirmed);
        long confirmations = bed.HomeAgent.Counters.Confirmations;

        var result = bed.DeliverToHomeAgent(bed.SealFromNode(bed.Node, bed.InnerPacket(bed.Node)));

        Assert.Equal(ReceiveOutcome.Data, result.Outcome);
        Assert.True(bed.HomeAgentView().NewestConfirmed);
        Assert.Equal(confirmations + 1, bed.HomeAgent.Counters.Confirmations);
        // What confirmation enables follows: IK's control SA released, the rekey timer started (8.4).
        Assert.NotNull(bed.HomeAgentView().RekeyDueAt);
        // And the stored record knows it, like after a BU.
        Assert.True(bed.HomeAgentStore.Load(bed.Node.HomeAddress)!.Newest!.Confirmed);
    }

    [Fact]
    public void Rule8_8_EspDummyPacketUnderNewGeneration_Confirms()
    {
        using var bed = Testbed.Started();
        var newest = bed.Node.Engine.KeyRing.Newest;
        var datagram = new byte[200];
        var sa = newest.DataMnToHa;
        Assert.True(sa.Seal(IpProtocol.NoNextHeader, new byte[8], datagram.AsSpan(Ipv6Header.Length), out int espLength).IsOk);
        new Ipv6Header(0, 0, (ushort)espLength, IpProtocol.Esp, 64, bed.Node.CareOf, Testbed.HomeAgentAddress).WriteTo(datagram);

        var result = bed.DeliverToHomeAgent(datagram[..(Ipv6Header.Length + espLength)]);

        // Not tunnel traffic (counted as such), but it authenticated under g1.
        Assert.Equal(DropReason.NotHandled, result.Reason);
        Assert.True(bed.HomeAgentView().NewestConfirmed);
    }

    [Fact]
    public void Rule8_9_MisplacedAndMalformedKeyOptionsInBindingUpdate_IgnoredRestProcessed()
    {
        using var bed = Testbed.Started();
        bed.AssertDataFlows();
        var node = bed.Node.Engine.KeyRing.Newest;
        ushort sequence = bed.Node.View.NextSequence;
        int sent = bed.Driver.Sent.Count;
        bed.Run(TimeSpan.FromSeconds(10));

        // A KEY-DIST (only ever in a BA) and a KEY-UPDATE-REQ of the wrong length.
        var bu = SealBindingUpdate(bed, node, sequence, (ref MobilityHeaderWriter w) =>
        {
            w.WriteKeyDistributionWrapped(MipKey.DefaultVendorId, 7, 1, 5000, 5001, 0, new byte[KeyWrap.WrappedLength]);
            w.WriteVendorSpecific(MipKey.DefaultVendorId, (byte)MipKeySubType.KeyUpdateRequest, [MipKey.Version, 0, 1]);
        });
        var result = bed.DeliverToHomeAgent(bu);

        Assert.Equal(ReceiveOutcome.Control, result.Outcome);
        Assert.Equal(sequence, bed.HomeAgentView().LastSequence);
        Assert.Equal(bed.Now + TimeSpan.FromSeconds(420), bed.HomeAgentView().BindingExpiresAt);
        Assert.Equal(0, bed.HomeAgent.Counters.Updates);
        Assert.Equal(new Generation(1), bed.HomeAgentView().Newest);
        Assert.Equal(sent + 1, bed.Driver.Sent.Count);
        Assert.Empty(KeyDistributionsSentTo(bed, sent));
        Assert.Equal(0, bed.HomeAgent.Counters.DroppedTotal);
    }

    [Fact]
    public void Rule8_9_MalformedRequestBeforeAWellFormedOne_TheWellFormedOneCounts()
    {
        using var bed = Testbed.Started();
        bed.AssertDataFlows();
        var newest = bed.Node.Engine.KeyRing.Newest;
        int sent = bed.Driver.Sent.Count;

        var bu = SealBindingUpdate(bed, newest, bed.Node.View.NextSequence, (ref MobilityHeaderWriter w) =>
        {
            w.WriteVendorSpecific(MipKey.DefaultVendorId, (byte)MipKeySubType.KeyUpdateRequest, [MipKey.Version, 0, 0, 0, 0, 1]);
            w.WriteKeyUpdateRequest(MipKey.DefaultVendorId, new KeyUpdateRequest(1));
        });
        var result = bed.DeliverToHomeAgent(bu);

        Assert.Equal(ReceiveOutcome.Control, result.Outcome);
        Assert.Equal(1, bed.HomeAgent.Counters.Updates);
        Assert.Equal(2u, Assert.Single(KeyDistributionsSentTo(bed, sent)).Generation);
    }

    [Fact]
    public void Rule8_9_MisplacedRequestAndMalformedKeyDistInBindingAck_IgnoredBindingAccepted()
    {
        using var bed = Testbed.Started();
        bed.AssertDataFlows();
        // The node's update BU is lost; a BA answering it carries a request (only ever in a BU) and a KEY-DIST of the wrong length.
        bed.Driver.DropNext(Testbed.HomeAgentAddress);
        bed.Update();
        ushort sequence = unchecked((ushort)(bed.Node.View.NextSequence - 1));

        var ba = SealBindingAck(bed, sequence, (ref MobilityHeaderWriter w) =>
        {
            w.WriteKeyUpdateRequest(MipKey.DefaultVendorId, new KeyUpdateRequest(9));
            w.WriteVendorSpecific(MipKey.DefaultVendorId, (byte)MipKeySubType.KeyDistribution, [MipKey.Version, 0, 0, 0, 2, 1]);
        });
        var result = bed.DeliverToNode(bed.Node, ba);

        Assert.Equal(ReceiveOutcome.Control, result.Outcome);
        Assert.Null(bed.Node.View.Exchange);
        Assert.True(bed.Node.View.Registered);
        Assert.Equal(new Generation(1), bed.Node.View.Newest);
        Assert.Equal(0, bed.Node.Engine.Counters.DroppedTotal);
        // Asked for a key, got none: it asks again (a plain BA to an update).
        bed.Run(TimeSpan.FromSeconds(1.5));
        Assert.Equal(new Generation(2), bed.Node.View.Newest);
    }

    [Fact]
    public void Rule8_9_MisplacedRequestBesideAValidKeyDist_KeyInstalled()
    {
        using var bed = Testbed.Started();
        bed.AssertDataFlows();
        bed.Driver.DropNext(Testbed.HomeAgentAddress);
        bed.Update();
        ushort sequence = unchecked((ushort)(bed.Node.View.NextSequence - 1));
        var kek = new byte[KeyLengths.Kek];
        KeyDerivation.DeriveKek(bed.Node.Provisioning.InitializationKey, bed.Node.HomeAddress, kek);
        var wrapped = new byte[KeyWrap.WrappedLength];
        KeyWrap.Wrap(kek, Enumerable.Repeat((byte)0x5a, KeyLengths.Secret).ToArray(), wrapped);

        var ba = SealBindingAck(bed, sequence, (ref MobilityHeaderWriter w) =>
        {
            w.WriteKeyResendRequest(MipKey.DefaultVendorId, new KeyResendRequest(1));
            w.WriteKeyDistributionWrapped(MipKey.DefaultVendorId, 2, (byte)EspSuite.AesGcm256, 7000, 7001, 0, wrapped);
        });
        var result = bed.DeliverToNode(bed.Node, ba);

        Assert.Equal(ReceiveOutcome.Control, result.Outcome);
        Assert.Equal(new Generation(2), bed.Node.View.Newest);
        Assert.Equal(new Spi(7000), bed.Node.Engine.KeyRing.Newest.SpiMnToHa);
    }

    /// <summary>A BU from the test node under <paramref name="keys"/> (sealed with the node's own SA, so its counter moves on).</summary>
    private static byte[] SealBindingUpdate(Testbed bed, GenerationKeys keys, ushort sequence, OptionWriter? options = null)
    {
        var mh = new byte[MobilityHeader.MaximumLength];
        var writer = new MobilityHeaderWriter(mh);
        writer.BeginBindingUpdate(sequence, HomeRegistration, 105);
        writer.WriteAlternateCareOfAddress(bed.Node.CareOf);
        options?.Invoke(ref writer);
        int length = writer.Finish();
        MobilityHeader.WriteChecksum(mh.AsSpan(0, length), bed.Node.HomeAddress, Testbed.HomeAgentAddress);
        var datagram = new byte[ProtectedDatagram.MaxControlLength];
        Assert.True(ProtectedDatagram.WriteFromMobileNode(datagram, bed.Node.CareOf, Testbed.HomeAgentAddress, bed.Node.HomeAddress,
            keys.ControlMnToHa, mh.AsSpan(0, length), out int written).IsOk);
        return datagram[..written];
    }

    /// <summary>An accepted BA to the test node under the HA's transmit key (sealed with the HA's own SA).</summary>
    private static byte[] SealBindingAck(Testbed bed, ushort sequence, OptionWriter options)
    {
        var mh = new byte[MobilityHeader.MaximumLength];
        var writer = new MobilityHeaderWriter(mh);
        writer.BeginBindingAcknowledgement(BindingAckStatus.Accepted, BindingAckFlags.None, sequence, 105);
        options(ref writer);
        int length = writer.Finish();
        MobilityHeader.WriteChecksum(mh.AsSpan(0, length), Testbed.HomeAgentAddress, bed.Node.HomeAddress);
        var datagram = new byte[ProtectedDatagram.MaxControlLength];
        var transmit = bed.HomeAgent.GetKeyRing(bed.Node.HomeAddress)!.Transmit;
        Assert.True(ProtectedDatagram.WriteFromHomeAgent(datagram, Testbed.HomeAgentAddress, bed.Node.CareOf, bed.Node.HomeAddress,
            transmit.ControlHaToMn, mh.AsSpan(0, length), out int written).IsOk);
        return datagram[..written];
    }

    /// <summary>Every KEY-DIST the HA sent to the test node from <paramref name="from"/> on (opened under IK and every generation the HA holds).</summary>
    private static List<(uint Generation, uint KeyLifetimeSeconds)> KeyDistributionsSentTo(Testbed bed, int from = 0)
    {
        var ring = bed.HomeAgent.GetKeyRing(bed.Node.HomeAddress)!;
        var known = new List<KnownGeneration>();
        foreach (var keys in new[] { ring.Initialization, ring.Previous, ring.Newest })
        {
            if (keys is not null)
            {
                known.Add(new KnownGeneration(keys.Secret.ToArray(), keys.SpiMnToHa, keys.SpiHaToMn));
            }
        }
        var found = new List<(uint, uint)>();
        foreach (var plain in ControlPlaintext.Open(bed.Driver.Sent.Skip(from).Where(d => EngineDriver.DestinationOf(d) == bed.Node.CareOf), known))
        {
            if (MobilityHeader.TryParse(plain, out var mh).IsOk && mh.TryGetBindingAcknowledgement(out var ba)
                && ba.Options.TryGetKeyDistribution(MipKey.DefaultVendorId, out var distribution))
            {
                found.Add((distribution.Generation, distribution.KeyLifetimeSeconds));
            }
        }
        return found;
    }
}
