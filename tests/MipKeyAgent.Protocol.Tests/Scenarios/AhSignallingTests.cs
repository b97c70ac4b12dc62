namespace MipKeyAgent.Protocol.Tests.Scenarios;

/// <summary>
/// Suite 3, AH-only signalling (PROTOCOL.md section 9): the scenario set of the ESP path (init,
/// update, lost BA, HA restart with and without its state, implicit mode) with BU, BA and BRR under
/// AH, the Mobility Header in clear, KEY-DIST always wrapped, and data under ESP AES-256-GCM.
/// </summary>
public sealed class AhSignallingTests
{
    private static readonly TestbedSettings Ah = new() { Suite = EspSuite.AhHmacSha256 };

    [Fact]
    public void Start_Suite3_ControlUnderAhDataUnderEspGcm()
    {
        using var bed = Testbed.Started(Ah);
        bed.AssertDataFlows();

        var control = bed.Driver.Sent.Where(d => SimulatedLink.IsControl(d)).ToList();
        Assert.Equal(2, control.Count);
        Assert.All(control, d => Assert.Equal(IpProtocol.AuthenticationHeader, Upper(d)));
        Assert.Equal(IpProtocol.Esp, Upper(bed.SealFromNode(bed.Node, bed.InnerPacket(bed.Node))));
        var g1 = bed.Node.Engine.KeyRing.Newest;
        Assert.Equal(new Generation(1), g1.Generation);
        Assert.Equal(EspSuite.AhHmacSha256, g1.Suite);
        Assert.True(g1.ControlMnToHa.IsAuthenticationHeader);
        Assert.Equal(EspSuite.AesGcm256, g1.DataMnToHa.Suite);
        Assert.True(bed.HomeAgentView().NewestConfirmed);
        Assert.Equal(0, bed.HomeAgent.Counters.DroppedTotal);
        Assert.Equal(0, bed.Node.Engine.Counters.DroppedTotal);
    }

    [Fact]
    public void Update_Suite3_KeyDistributionInClearMobilityHeaderButSecretNeverOnTheLink()
    {
        using var bed = Testbed.Started(Ah);
        bed.Update();
        bed.AssertDataFlows();

        var ring = bed.HomeAgent.GetKeyRing(bed.Node.HomeAddress)!;
        Assert.Equal(new Generation(2), ring.Newest.Generation);
        var secrets = new[] { ring.Newest.Secret.ToArray(), ring.Previous!.Secret.ToArray() };
        int distributions = 0;
        foreach (var datagram in bed.Driver.Sent)
        {
            Assert.All(secrets, s => Assert.False(ControlPlaintext.Contains(datagram, s)));
            if (Upper(datagram) == IpProtocol.AuthenticationHeader)
            {
                Assert.True(Ipv6Datagram.TryParse(datagram, out var parsed).IsOk);
                var mhBytes = parsed.GetUpper(datagram)[SecurityAssociation.AuthenticationHeaderLength..];
                Assert.True(MobilityHeader.TryParse(mhBytes, out var mh).IsOk);
                if (mh.TryGetBindingAcknowledgement(out var ba) && ba.Options.TryGetKeyDistribution(MipKey.DefaultVendorId, out var distribution))
                {
                    Assert.False(distribution.IsKeyReference);
                    Assert.Equal((byte)EspSuite.AhHmacSha256, distribution.Suite);
                    distributions++;
                }
            }
        }
        Assert.Equal(2, distributions);
    }

    [Fact]
    public void UpdateAnswerLost_Suite3_ResendGetsSameGeneration()
    {
        using var bed = Testbed.Started(Ah);
        bed.Driver.DropNext(bed.Node.CareOf);

        bed.Update();
        var issued = bed.HomeAgent.GetKeyRing(bed.Node.HomeAddress)!.Newest;
        bed.AssertDataFlows();
        bed.Run(TimeSpan.FromSeconds(1.5));

        Assert.Equal(1, bed.HomeAgent.Counters.Resends);
        Assert.Same(issued, bed.HomeAgent.GetKeyRing(bed.Node.HomeAddress)!.Newest);
        Assert.Equal(issued.SpiMnToHa, bed.Node.Engine.KeyRing.Newest.SpiMnToHa);
        bed.AssertDataFlows();
        Assert.True(issued.Confirmed);
        Assert.Equal(0, bed.HomeAgent.Counters.DroppedTotal);
        Assert.Equal(0, bed.Node.Engine.Counters.DroppedTotal);
    }

    [Fact]
    public void HomeAgentRestart_Suite3WithStore_KeysContinue()
    {
        using var bed = Testbed.Started(Ah);
        bed.Update();
        var before = bed.HomeAgentView();

        bed.RestartHomeAgent(keepState: true);

        Assert.Equal(before.Newest, bed.HomeAgentView().Newest);
        bed.AssertDataFlows();
        bed.Update();
        Assert.Equal(new Generation(3), bed.Node.View.Newest);
        Assert.Equal(0, bed.Node.Engine.Counters.DroppedTotal);
    }

    [Fact]
    public void HomeAgentRestart_Suite3WithoutState_NodeReinitializesUnderAh()
    {
        using var bed = Testbed.Started(Ah);
        bed.Update();
        bed.RestartHomeAgent(keepState: false);

        // The refresh goes unanswered (unknown SPI), then 1 + 2 + 4 + 8 s of retransmissions, then the re-init under IK.
        bed.Run(TimeSpan.FromSeconds(315 + 16));

        Assert.Equal(1, bed.Node.Engine.Counters.ReInits);
        Assert.Equal(2UL, bed.HomeAgentView().InitEpoch);
        Assert.Equal(new Generation(1), bed.Node.View.Newest);
        bed.AssertDataFlows();
    }

    [Fact]
    public void Start_Suite3Implicit_GenerationOneWithoutRequestOptions()
    {
        using var bed = Testbed.Started(Ah with { Mode = KeyExchangeMode.Implicit });

        Assert.Equal(new Generation(1), bed.Node.View.Newest);
        bed.AssertDataFlows();
        Assert.Equal(0, bed.HomeAgent.Counters.DroppedTotal);
    }

    [Fact]
    public void EspDatagram_NamingAnAhControlSpi_DroppedAsUnknownSpi()
    {
        using var bed = Testbed.Started(Ah);
        var ik = bed.Node.Provisioning;
        // An ESP BU under the IK's MN->HA SPI, sealed with the ESP key material a suite-1 node would derive.
        var material = new byte[EspSuites.KeyMaterialLength(EspSuite.AesGcm256)];
        KeyDerivation.DeriveControlKeyMaterial(ik.InitializationKey, KeyDirection.MnToHa, ik.SpiMnToHa.Value, EspSuite.AesGcm256, material);
        using var esp = new SecurityAssociation(ik.SpiMnToHa.Value, EspSuite.AesGcm256, material, lastSequenceSent: 1000);
        var datagram = new byte[200];
        new Ipv6Header(0, 0, (ushort)esp.SealedLength(16), IpProtocol.Esp, 64, bed.Node.CareOf, Testbed.HomeAgentAddress).WriteTo(datagram);
        Assert.True(esp.Seal(IpProtocol.Mobility, new byte[16], datagram.AsSpan(Ipv6Header.Length), out int written).IsOk);

        var result = bed.DeliverToHomeAgent(datagram[..(Ipv6Header.Length + written)]);

        Assert.Equal(DropReason.UnknownSpi, result.Reason);
        Assert.Equal(1, bed.HomeAgent.Counters.Dropped(DropReason.UnknownSpi));
    }

    [Fact]
    public void AhDatagram_NamingADataSpi_DroppedAsUnknownSpi()
    {
        using var bed = Testbed.Started(Ah);
        var bu = bed.Driver.Sent.First(d => Upper(d) == IpProtocol.AuthenticationHeader);
        var forged = (byte[])bu.Clone();
        Assert.True(Ipv6Datagram.TryParse(forged, out var parsed).IsOk);
        // The SPI field of AH (offset 4) rewritten to the node's IK data SPI.
        var dataSpi = bed.Node.Provisioning.SpiMnToHa.Data.Value;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(forged.AsSpan(parsed.UpperOffset + 4), dataSpi);

        var result = bed.DeliverToHomeAgent(forged);

        Assert.Equal(DropReason.UnknownSpi, result.Reason);
    }

    [Fact]
    public void AhBindingUpdate_ReplayedAndTampered_CountedDropsNoAnswer()
    {
        using var bed = Testbed.Started(Ah);
        var bu = bed.Driver.Sent.First(d => Upper(d) == IpProtocol.AuthenticationHeader);
        int sent = bed.Driver.Sent.Count;
        var tampered = (byte[])bu.Clone();
        Assert.True(Ipv6Datagram.TryParse(tampered, out var parsed).IsOk);
        // A fresh sequence number (so the window passes it), the ICV left as it was.
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(tampered.AsSpan(parsed.UpperOffset + 8), 50);

        Assert.Equal(DropReason.Replay, bed.DeliverToHomeAgent(bu).Reason);
        Assert.Equal(DropReason.AuthenticationFailed, bed.DeliverToHomeAgent(tampered).Reason);
        bed.Driver.Pump();
        Assert.Equal(sent, bed.Driver.Sent.Count);
    }

    private static byte Upper(byte[] datagram) =>
        Ipv6Datagram.TryParse(datagram, out var parsed).IsOk ? parsed.UpperProtocol : (byte)0;
}
