using System.Buffers.Binary;

namespace MipKeyAgent.Protocol.Tests.Hostile;

/// <summary>
/// Hostile input at the HA (PROTOCOL.md section 2: "dropped and counted, never answered"). Each test
/// names what the input gets and proves, with a <see cref="HomeAgentSnapshot"/>, that nothing else
/// changed. Basics (same-SA replay, stale epoch, unknown data SPI, bad BU/BA ICV, HoA mismatch)
/// live in Scenarios/HostileTests; the replayed KEY-INIT-REQ across an HA restart on the SQLite
/// store is in MipKeyAgent.Store.Tests (SqliteEngineRestartTests).
/// </summary>
public sealed class HostileInputTests
{
    private const int EspOffsetInBindingUpdate = 64; // IPv6 40 + DestOpt{PadN 4, HAO 18} 24

    private static byte[] LastBindingUpdate(Testbed bed) =>
        bed.Driver.Sent.Last(d => EngineDriver.DestinationOf(d) == Testbed.HomeAgentAddress);

    private static byte[] FirstBindingUpdate(Testbed bed) =>
        bed.Driver.Sent.First(d => EngineDriver.DestinationOf(d) == Testbed.HomeAgentAddress);

    private static Testbed Rekeyed(int updates, int nodes = 1)
    {
        var bed = Testbed.Started(new TestbedSettings { Nodes = nodes });
        for (int i = 0; i < updates; i++)
        {
            bed.Update();
            bed.AssertDataFlows();
        }
        return bed;
    }

    [Fact]
    public void ReplayedInit_AfterRekeys_ReplayDropNoAnswer()
    {
        using var bed = Rekeyed(2);
        var init = FirstBindingUpdate(bed);
        var before = HomeAgentSnapshot.Take(bed);

        var result = bed.DeliverToHomeAgent(init);

        Assert.Equal(DropReason.Replay, result.Reason);
        before.AssertUnchangedExcept(HomeAgentSnapshot.Take(bed), HomeAgentSnapshot.Drop(DropReason.Replay));
    }

    [Fact]
    public void ReplayedBindingUpdate_OlderGenerationDropped_UnknownSpiDropNoAnswer()
    {
        using var bed = Testbed.Started();
        bed.Update();
        bed.AssertDataFlows();
        var underG1 = LastBindingUpdate(bed); // the update request, sent under g1
        for (int i = 0; i < 2; i++)
        {
            bed.Update();
            bed.AssertDataFlows();
        }
        Assert.Equal(new Generation(4), bed.HomeAgentView().Newest);
        var before = HomeAgentSnapshot.Take(bed);

        var result = bed.DeliverToHomeAgent(underG1);

        Assert.Equal(DropReason.UnknownSpi, result.Reason);
        before.AssertUnchangedExcept(HomeAgentSnapshot.Take(bed), HomeAgentSnapshot.Drop(DropReason.UnknownSpi));
    }

    [Fact]
    public void ReplayedBindingUpdate_PreviousGenerationStillHeld_ReplayDropNoResend()
    {
        using var bed = Rekeyed(1);
        var underG1 = LastBindingUpdate(bed);
        bed.Update();
        bed.AssertDataFlows();
        // g1 is N-1 now; a replayed BU under it must not trigger rule 3.
        Assert.Equal(new Generation(2), bed.HomeAgentView().Previous);
        var before = HomeAgentSnapshot.Take(bed);

        var result = bed.DeliverToHomeAgent(LastBindingUpdate(bed));
        var older = bed.DeliverToHomeAgent(underG1);

        Assert.Equal(DropReason.Replay, result.Reason);
        Assert.Equal(DropReason.UnknownSpi, older.Reason);
        before.AssertUnchangedExcept(HomeAgentSnapshot.Take(bed), [.. HomeAgentSnapshot.Drop(DropReason.Replay), .. HomeAgentSnapshot.Drop(DropReason.UnknownSpi)]);
    }

    [Fact]
    public void BindingUpdate_OfAnotherNodeReplayedUnderItsOwnSa_ReplayDropBothNodesUnchanged()
    {
        using var bed = Testbed.Started(new TestbedSettings { Nodes = 2 });
        var fromSecond = bed.Driver.Sent.Last(d => EngineDriver.DestinationOf(d) == Testbed.HomeAgentAddress
            && bed.HomeAgent.Spis.TryGet(BinaryPrimitives.ReadUInt32BigEndian(d.AsSpan(EspOffsetInBindingUpdate)), out var e)
            && e.Ring.HomeAddress == bed.Nodes[1].HomeAddress);
        // Rewritten to look like the first node's (source and HAO): the SPI still names the second node's SA.
        var forged = (byte[])fromSecond.Clone();
        bed.Nodes[0].CareOf.WriteTo(forged.AsSpan(8, 16));
        bed.Nodes[0].HomeAddress.WriteTo(forged.AsSpan(48, 16));
        var before = HomeAgentSnapshot.Take(bed);

        var result = bed.DeliverToHomeAgent(forged);

        Assert.Equal(DropReason.Replay, result.Reason);
        Assert.Equal(bed.Nodes[1].HomeAddress, result.HomeAddress);
        before.AssertUnchangedExcept(HomeAgentSnapshot.Take(bed), HomeAgentSnapshot.Drop(DropReason.Replay));
    }

    [Theory]
    [InlineData(0x7777_7777u, DropReason.UnknownSpi)]  // nobody's
    [InlineData(0u, DropReason.Malformed)]             // never sent (RFC 4303 section 2.1): a malformed header
    [InlineData(255u, DropReason.UnknownSpi)]          // reserved
    [InlineData(1001u, DropReason.UnknownSpi)]         // the node's IK SPI of the HA->MN direction: the HA sends on it, never receives
    public void ForgedSpi_ControlPacket_CountedDropNoAnswer(uint spi, DropReason expected)
    {
        using var bed = Rekeyed(1);
        var bu = (byte[])LastBindingUpdate(bed).Clone();
        BinaryPrimitives.WriteUInt32BigEndian(bu.AsSpan(EspOffsetInBindingUpdate), spi);
        var before = HomeAgentSnapshot.Take(bed);

        var result = bed.DeliverToHomeAgent(bu);

        Assert.Equal(expected, result.Reason);
        before.AssertUnchangedExcept(HomeAgentSnapshot.Take(bed), HomeAgentSnapshot.Drop(expected));
    }

    [Fact]
    public void ControlSpiSwappedForItsDataSpi_NewSequence_AuthenticationFailedNoAnswer()
    {
        using var bed = Rekeyed(1);
        var bu = (byte[])LastBindingUpdate(bed).Clone();
        uint spi = BinaryPrimitives.ReadUInt32BigEndian(bu.AsSpan(EspOffsetInBindingUpdate));
        BinaryPrimitives.WriteUInt32BigEndian(bu.AsSpan(EspOffsetInBindingUpdate), spi + Spi.DataOffset);
        BinaryPrimitives.WriteUInt32BigEndian(bu.AsSpan(EspOffsetInBindingUpdate + 4), 1_000_000);
        var before = HomeAgentSnapshot.Take(bed);

        var result = bed.DeliverToHomeAgent(bu);

        Assert.Equal(DropReason.AuthenticationFailed, result.Reason);
        before.AssertUnchangedExcept(HomeAgentSnapshot.Take(bed), HomeAgentSnapshot.Drop(DropReason.AuthenticationFailed));
    }

    [Fact]
    public void BadIcv_DataPacket_AuthenticationFailedWindowNotAdvanced()
    {
        using var bed = Rekeyed(1);
        var genuine = bed.SealFromNode(bed.Node, bed.InnerPacket(bed.Node));
        var forged = (byte[])genuine.Clone();
        forged[^5] ^= 0x10;
        var before = HomeAgentSnapshot.Take(bed);

        var result = bed.DeliverToHomeAgent(forged);

        Assert.Equal(DropReason.AuthenticationFailed, result.Reason);
        before.AssertUnchangedExcept(HomeAgentSnapshot.Take(bed), HomeAgentSnapshot.Drop(DropReason.AuthenticationFailed));
        Assert.Equal(ReceiveOutcome.Data, bed.DeliverToHomeAgent(genuine).Outcome);
    }

    [Fact]
    public void BadIcv_HigherSequenceNumber_AuthenticationFailedWindowNotAdvanced()
    {
        using var bed = Rekeyed(1);
        var genuine = bed.SealFromNode(bed.Node, bed.InnerPacket(bed.Node));
        var forged = (byte[])genuine.Clone();
        // Sequence number far ahead (ESP right after the 40-octet IPv6 header in tunnel mode).
        BinaryPrimitives.WriteUInt32BigEndian(forged.AsSpan(Ipv6Header.Length + 4), 4_000_000_000);
        var before = HomeAgentSnapshot.Take(bed);

        Assert.Equal(DropReason.AuthenticationFailed, bed.DeliverToHomeAgent(forged).Reason);

        before.AssertUnchangedExcept(HomeAgentSnapshot.Take(bed), HomeAgentSnapshot.Drop(DropReason.AuthenticationFailed));
        Assert.Equal(ReceiveOutcome.Data, bed.DeliverToHomeAgent(genuine).Outcome);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(39)]   // inside the IPv6 header
    [InlineData(41)]   // inside the Destination Options header
    [InlineData(70)]   // inside the ESP header
    [InlineData(-1)]   // one octet short of the ICV
    public void Truncated_BindingUpdate_MalformedDropNoAnswer(int length)
    {
        using var bed = Rekeyed(1);
        var bu = LastBindingUpdate(bed);
        var truncated = bu[..(length < 0 ? bu.Length + length : length)];
        var before = HomeAgentSnapshot.Take(bed);

        var result = bed.DeliverToHomeAgent(truncated);

        Assert.Equal(DropReason.Malformed, result.Reason);
        before.AssertUnchangedExcept(HomeAgentSnapshot.Take(bed), HomeAgentSnapshot.Drop(DropReason.Malformed));
    }

    [Fact]
    public void Oversized_PayloadLengthBeyondDatagram_MalformedDropNoAnswer()
    {
        using var bed = Rekeyed(1);
        var bu = LastBindingUpdate(bed);
        var oversized = new byte[70_000];
        bu.CopyTo(oversized, 0);
        // Payload length 65535 while 69960 octets follow: only 65535 are the packet (the rest is
        // link padding), which cuts the ESP trailer off -> the ICV cannot verify.
        BinaryPrimitives.WriteUInt16BigEndian(oversized.AsSpan(4), ushort.MaxValue);
        var before = HomeAgentSnapshot.Take(bed);

        var result = bed.DeliverToHomeAgent(oversized);

        Assert.True(result.IsDropped);
        Assert.Contains(result.Reason, new[] { DropReason.Malformed, DropReason.Replay, DropReason.AuthenticationFailed });
        before.AssertUnchangedExcept(HomeAgentSnapshot.Take(bed), HomeAgentSnapshot.Drop(result.Reason));
    }

    [Fact]
    public void Oversized_PayloadLengthLongerThanDatagram_MalformedDropNoAnswer()
    {
        using var bed = Rekeyed(1);
        var bu = (byte[])LastBindingUpdate(bed).Clone();
        BinaryPrimitives.WriteUInt16BigEndian(bu.AsSpan(4), (ushort)(bu.Length - Ipv6Header.Length + 1));
        var before = HomeAgentSnapshot.Take(bed);

        var result = bed.DeliverToHomeAgent(bu);

        Assert.Equal(DropReason.Malformed, result.Reason);
        before.AssertUnchangedExcept(HomeAgentSnapshot.Take(bed), HomeAgentSnapshot.Drop(DropReason.Malformed));
    }

    [Theory]
    [InlineData(41, 0xFF)] // Destination Options Hdr Ext Len: 2048 octets in a ~140-octet packet
    [InlineData(43, 0x30)] // PadN length runs past the option area
    [InlineData(47, 0x40)] // Home Address option length runs past the header
    [InlineData(47, 0x0F)] // Home Address option shorter than an address
    public void OptionOverrunningItsHeader_BindingUpdate_MalformedDropNoAnswer(int offset, byte value)
    {
        using var bed = Rekeyed(1);
        var bu = (byte[])LastBindingUpdate(bed).Clone();
        bu[offset] = value;
        var before = HomeAgentSnapshot.Take(bed);

        var result = bed.DeliverToHomeAgent(bu);

        Assert.Equal(DropReason.Malformed, result.Reason);
        before.AssertUnchangedExcept(HomeAgentSnapshot.Take(bed), HomeAgentSnapshot.Drop(DropReason.Malformed));
    }

    [Fact]
    public void SequenceOutOfWindow_InitFromRolledBackNode_Status135NoKeyChange()
    {
        using var bed = Rekeyed(3);
        var haBefore = bed.HomeAgentView();
        ushort last = haBefore.LastSequence!.Value;
        // A copy of the node whose sequence store was rolled back (epoch and IK counter ahead, sequence behind).
        var staleLink = new EngineDriver();
        using var stale = new MobileNodeEngine(
            new MobileNodeOptions { Provisioning = bed.Node.Provisioning, HomeAgentAddress = Testbed.HomeAgentAddress, CareOfAddress = bed.Node.CareOf },
            bed.Clock, staleLink, new InMemoryMobileNodeStateStore(new MobileNodeState(5, (ushort)(last - 10), 1_000_000)), new SeededKeySource(3));
        stale.Start();
        var before = HomeAgentSnapshot.Take(bed);

        var result = bed.DeliverToHomeAgent(staleLink.Sent.Single());

        Assert.Equal(ReceiveOutcome.SequenceOutOfWindow, result.Outcome);
        var after = HomeAgentSnapshot.Take(bed);
        before.AssertCounters(after, ("Received", 1), ("SequenceOutOfWindow", 1), ("Sent", 1));
        // Keys, epoch, binding and last accepted number unchanged (only the IK window moved: the packet was genuine).
        Assert.Equal(haBefore, bed.HomeAgentView());
        // One BA under the IK (SPI 1001), status 135 with the last accepted number (RFC 6275 section 9.5.1).
        var ba = bed.Driver.Sent[^1];
        Assert.Equal(1001u, BinaryPrimitives.ReadUInt32BigEndian(ba.AsSpan(Ipv6Header.Length + 24)));
        Assert.Equal(ReceiveOutcome.SequenceOutOfWindow, stale.Receive(ba, new byte[2048]).Outcome);
        // The node resumed at last + 1 and resent at once (RFC 6275 section 11.7.1).
        Assert.Equal(2, staleLink.Sent.Count);
        Assert.Equal((ushort)(last + 2), stale.View.NextSequence);
    }

    [Fact]
    public void ReplayedInitFlood_FromNodesCareOfAndElsewhere_AllCountedAsReplay()
    {
        using var bed = Testbed.Started();
        var init = FirstBindingUpdate(bed);
        var before = HomeAgentSnapshot.Take(bed);
        int burst = new HomeAgentOptions { Address = Testbed.HomeAgentAddress }.InitRateLimit!.Burst;
        var elsewhere = (byte[])init.Clone();
        Ipv6Address.Parse("2001:db8:bad::1").WriteTo(elsewhere.AsSpan(8, 16));

        // Far beyond the init budget, from the node's own care-of address and from another source.
        var results = Enumerable.Range(0, burst + 24).Select(i => bed.DeliverToHomeAgent(i % 2 == 0 ? init : elsewhere)).ToList();

        Assert.All(results, r => Assert.Equal(DropReason.Replay, r.Reason));
        before.AssertUnchangedExcept(HomeAgentSnapshot.Take(bed), HomeAgentSnapshot.Drop(DropReason.Replay, burst + 24));
    }

    [Fact]
    public void JunkFloodAtIkSpi_FromNodesCareOf_ValidInitAnsweredAtOnce()
    {
        using var bed = Testbed.Started();
        var init = FirstBindingUpdate(bed);
        Assert.Equal(bed.Node.CareOf, Ipv6Address.Read(init.AsSpan(8, 16)));
        int burst = new HomeAgentOptions { Address = Testbed.HomeAgentAddress }.InitRateLimit!.Burst;
        var junk = (byte[])init.Clone();
        var before = HomeAgentSnapshot.Take(bed);

        // Forged datagrams from the node's care-of address at its IK SPI: fresh ESP sequence
        // numbers, garbage after them (they fail the ICV), far more than the init budget.
        for (uint i = 0; i < (uint)(burst * 4); i++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(junk.AsSpan(EspOffsetInBindingUpdate + 4), 1000 + i);
            junk[^1] ^= 0x5a;
            Assert.Equal(DropReason.AuthenticationFailed, bed.DeliverToHomeAgent(junk).Reason);
        }
        before.AssertUnchangedExcept(HomeAgentSnapshot.Take(bed), HomeAgentSnapshot.Drop(DropReason.AuthenticationFailed, burst * 4));

        // The node restarts its keys now, with no time passing: its first KEY-INIT-REQ is answered.
        var at = bed.Now;
        int sent = bed.Driver.Sent.Count;
        bed.Node.Engine.Reinitialize();
        bed.Driver.Pump();

        Assert.Equal(at, bed.Now);
        Assert.Equal(2UL, bed.HomeAgentView().InitEpoch);
        Assert.Equal(bed.HomeAgentView().Newest, bed.Node.View.Newest);
        Assert.Equal(0, bed.HomeAgent.Counters.Dropped(DropReason.RateLimited));
        // One init, one BA carrying KEY-DIST: no retransmission was needed.
        Assert.Equal(1, bed.Driver.Sent.Skip(sent).Count(d => EngineDriver.DestinationOf(d) == Testbed.HomeAgentAddress
            && BinaryPrimitives.ReadUInt32BigEndian(d.AsSpan(EspOffsetInBindingUpdate)) == bed.Node.Provisioning.SpiMnToHa.Value));
        bed.AssertDataFlows();
    }

    [Fact]
    public void InitLoop_NodeItself_RateLimitedAfterBurstThenRefilled()
    {
        using var bed = Testbed.Started();
        int burst = new HomeAgentOptions { Address = Testbed.HomeAgentAddress }.InitRateLimit!.Burst;

        // A node restarting its keys in a loop (authenticated inits, each a fresh epoch) spends its
        // own budget: the limit keeps it from draining the key source.
        for (int i = 0; i < burst + 4; i++)
        {
            bed.Node.Engine.Reinitialize();
            bed.Driver.Pump();
        }

        Assert.True(bed.HomeAgent.Counters.Dropped(DropReason.RateLimited) > 0);
        ulong epoch = bed.HomeAgentView().InitEpoch!.Value;
        Assert.True(epoch < (ulong)(burst + 5));
        // Tokens come back with time: 4 per second by default.
        bed.Clock.Advance(TimeSpan.FromSeconds(1));
        bed.Node.Engine.Reinitialize();
        bed.Driver.Pump();
        Assert.True(bed.HomeAgentView().InitEpoch > epoch);
    }

    [Fact]
    public void InitFlood_ManySpoofedSources_TrackedSourcesBounded()
    {
        var limit = new InitRateLimit(RequestsPerSecond: 1, Burst: 1) { MaxSources = 64 };
        var time = TestTime.NewClock();
        var limiter = new InitRateLimiter(limit, time);

        for (int i = 0; i < 10_000; i++)
        {
            Assert.True(limiter.TryTake(new Ipv6Address(new UInt128(0x2001_0db8_0bad_0000, (ulong)i))));
        }

        Assert.True(limiter.TrackedSources <= 64);
    }
}
