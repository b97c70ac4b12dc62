using MipKeyAgent.Wire;

namespace MipKeyAgent.Esp.Tests;

/// <summary>
/// Suite 3 (PROTOCOL.md section 9): AH (RFC 4302) with HMAC-SHA-256-128 in the BU and BA shapes.
/// The expected datagrams were computed independently with Python's hmac/hashlib over the
/// receiver's view (source and Home Address option swapped; RH2 as at its final destination;
/// Traffic Class, Flow Label and Hop Limit zeroed; ICV zeroed), key 0x40..0x5f, SPI 0x100, seq 1.
/// </summary>
public sealed class AuthenticationHeaderTests
{
    private const uint Spi = 0x100;
    private static readonly byte[] Key = Sequence(0x40, 32);
    private static readonly Ipv6Address CareOf = Ipv6Address.Parse("2001:db8:100::1");
    private static readonly Ipv6Address HomeAgent = Ipv6Address.Parse("2001:db8:1::1");
    private static readonly Ipv6Address Home = Ipv6Address.Parse("2001:db8:2::1");

    private const string BindingUpdateSeq1 =
        "6000000000403c40" + "20010db8010000000000000000000001" + "20010db8000100000000000000000001" +
        "330201020000c910" + "20010db8000200000000000000000001" +
        "8706000000000100" + "00000001" + "2c479ec89a044aeceebb499696a57b9c" + "00000000" + "0001020304050607";

    private const string BindingAcknowledgementSeq1 =
        "6000000000402b40" + "20010db8000100000000000000000001" + "20010db8010000000000000000000001" +
        "3302020100000000" + "20010db8000200000000000000000001" +
        "8706000000000100" + "00000001" + "c1d012f9b9e3548901661a0b1a6e3b5f" + "00000000" + "0001020304050607";

    [Fact]
    public void SealBindingUpdateShape_KnownKey_MatchesIndependentIcv()
    {
        using var sa = new SecurityAssociation(Spi, EspSuite.AhHmacSha256, Key);

        var datagram = BindingUpdate();
        Assert.True(sa.SealAuthenticationHeader(datagram, 64, IpProtocol.Mobility).IsOk);

        Assert.Equal(BindingUpdateSeq1, Convert.ToHexStringLower(datagram));
    }

    [Fact]
    public void SealBindingAcknowledgementShape_KnownKey_MatchesIndependentIcv()
    {
        using var sa = new SecurityAssociation(Spi, EspSuite.AhHmacSha256, Key);

        var datagram = BindingAcknowledgement();
        Assert.True(sa.SealAuthenticationHeader(datagram, 64, IpProtocol.Mobility).IsOk);

        Assert.Equal(BindingAcknowledgementSeq1, Convert.ToHexStringLower(datagram));
    }

    [Fact]
    public void OpenBindingUpdate_IndependentVector_PayloadAfterAh()
    {
        using var sa = new SecurityAssociation(Spi, EspSuite.AhHmacSha256, Key);

        var error = sa.OpenAuthenticationHeader(Convert.FromHexString(BindingUpdateSeq1), 64, out int payloadOffset, out byte nextHeader);

        Assert.True(error.IsOk, error.ToString());
        Assert.Equal(96, payloadOffset);
        Assert.Equal(IpProtocol.Mobility, nextHeader);
    }

    [Fact]
    public void OpenBindingAcknowledgement_HopLimitAndFlowLabelChangedEnRoute_StillVerifies()
    {
        using var sa = new SecurityAssociation(Spi, EspSuite.AhHmacSha256, Key);
        var datagram = Convert.FromHexString(BindingAcknowledgementSeq1);
        datagram[7] = 3;
        datagram[1] = 0x0a;
        datagram[3] = 0x55;

        Assert.True(sa.OpenAuthenticationHeader(datagram, 64, out _, out _).IsOk);
    }

    [Theory]
    [InlineData(10)] // source (the care-of address)
    [InlineData(30)] // destination
    [InlineData(50)] // the home address in the option
    [InlineData(100)] // the Mobility Header
    [InlineData(6)] // Next Header of the IPv6 header
    public void OpenBindingUpdate_ImmutableOctetChanged_AuthenticationFailed(int offset)
    {
        using var sa = new SecurityAssociation(Spi, EspSuite.AhHmacSha256, Key);
        var datagram = Convert.FromHexString(BindingUpdateSeq1);
        datagram[offset] ^= 0x01;

        Assert.Equal(WireErrorKind.AuthenticationFailed, sa.OpenAuthenticationHeader(datagram, 64, out _, out _).Kind);
    }

    [Fact]
    public void OpenBindingAcknowledgement_SegmentsLeftChanged_AuthenticationFailed()
    {
        using var sa = new SecurityAssociation(Spi, EspSuite.AhHmacSha256, Key);
        var datagram = Convert.FromHexString(BindingAcknowledgementSeq1);
        datagram[43] = 0;

        Assert.Equal(WireErrorKind.AuthenticationFailed, sa.OpenAuthenticationHeader(datagram, 64, out _, out _).Kind);
    }

    [Fact]
    public void Open_SameDatagramTwice_SecondIsReplay()
    {
        using var sa = new SecurityAssociation(Spi, EspSuite.AhHmacSha256, Key);
        var datagram = Convert.FromHexString(BindingUpdateSeq1);

        Assert.True(sa.OpenAuthenticationHeader(datagram, 64, out _, out _).IsOk);
        Assert.Equal(WireErrorKind.Replay, sa.OpenAuthenticationHeader(datagram, 64, out _, out _).Kind);
    }

    [Fact]
    public void Open_ForgedIcv_WindowDoesNotAdvance()
    {
        using var sa = new SecurityAssociation(Spi, EspSuite.AhHmacSha256, Key);
        var forged = Convert.FromHexString(BindingUpdateSeq1);
        forged[80] ^= 0xff;

        Assert.Equal(WireErrorKind.AuthenticationFailed, sa.OpenAuthenticationHeader(forged, 64, out _, out _).Kind);
        Assert.True(sa.OpenAuthenticationHeader(Convert.FromHexString(BindingUpdateSeq1), 64, out _, out _).IsOk);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(40)]
    [InlineData(70)]
    [InlineData(95)]
    public void Open_Truncated_TypedErrorNoThrow(int length)
    {
        using var sa = new SecurityAssociation(Spi, EspSuite.AhHmacSha256, Key);
        var datagram = Convert.FromHexString(BindingUpdateSeq1).AsSpan(0, length).ToArray();

        Assert.False(sa.OpenAuthenticationHeader(datagram, 64, out _, out _).IsOk);
    }

    [Fact]
    public void Open_WrongSpi_UnknownSpi()
    {
        using var sa = new SecurityAssociation(Spi + 1, EspSuite.AhHmacSha256, Key);

        Assert.Equal(WireErrorKind.UnknownSpi, sa.OpenAuthenticationHeader(Convert.FromHexString(BindingUpdateSeq1), 64, out _, out _).Kind);
    }

    [Fact]
    public void Open_AhLengthOfAnotherIcv_BadLength()
    {
        using var sa = new SecurityAssociation(Spi, EspSuite.AhHmacSha256, Key);
        var datagram = Convert.FromHexString(BindingUpdateSeq1);
        datagram[65] = 5;

        Assert.Equal(WireErrorKind.BadLength, sa.OpenAuthenticationHeader(datagram, 64, out _, out _).Kind);
    }

    [Fact]
    public void EspSealAndOpen_OnAhSa_Unsupported()
    {
        using var sa = new SecurityAssociation(Spi, EspSuite.AhHmacSha256, Key);
        var buffer = new byte[128];

        Assert.Equal(WireErrorKind.Unsupported, sa.Seal(IpProtocol.Mobility, [1, 2, 3], buffer, out _).Kind);
        Assert.Equal(WireErrorKind.Unsupported, sa.Open(buffer, buffer, out _, out _).Kind);
    }

    [Fact]
    public void SealAuthenticationHeader_OnEspSa_Unsupported()
    {
        using var sa = new SecurityAssociation(Spi, EspSuite.AesGcm256, Sequence(0x40, 36));

        Assert.Equal(WireErrorKind.Unsupported, sa.SealAuthenticationHeader(BindingUpdate(), 64, IpProtocol.Mobility).Kind);
    }

    [Fact]
    public void Seal_Twice_SequenceAdvancesAndBothOpenInOrder()
    {
        using var sender = new SecurityAssociation(Spi, EspSuite.AhHmacSha256, Key);
        using var receiver = new SecurityAssociation(Spi, EspSuite.AhHmacSha256, Key);
        var first = BindingUpdate();
        var second = BindingUpdate();
        sender.SealAuthenticationHeader(first, 64, IpProtocol.Mobility);
        sender.SealAuthenticationHeader(second, 64, IpProtocol.Mobility);

        Assert.Equal(2u, sender.LastSequenceSent);
        Assert.True(receiver.OpenAuthenticationHeader(first, 64, out _, out _).IsOk);
        Assert.True(receiver.OpenAuthenticationHeader(second, 64, out _, out _).IsOk);
        Assert.NotEqual(first, second);
    }

    [Fact]
    public void DeriveControlKeyMaterial_Suite3_AhLabelsDistinctFromEsp()
    {
        var secret = Sequence(1, 32);
        var ah = new byte[32];
        var ahOtherWay = new byte[32];
        var esp = new byte[36];
        KeyDerivation.DeriveControlKeyMaterial(secret, KeyDirection.MnToHa, 0x100, EspSuite.AhHmacSha256, ah);
        KeyDerivation.DeriveControlKeyMaterial(secret, KeyDirection.HaToMn, 0x100, EspSuite.AhHmacSha256, ahOtherWay);
        KeyDerivation.DeriveControlKeyMaterial(secret, KeyDirection.MnToHa, 0x100, EspSuite.AesGcm256, esp);

        // HKDF-SHA256(K, salt "MIPKEY-v1", info "ah mn->ha" || 00000100), computed with Python's hmac.
        Assert.Equal(HkdfAhMnToHa, Convert.ToHexStringLower(ah));
        Assert.NotEqual(ah, ahOtherWay);
        Assert.NotEqual(ah, esp[..32]);
    }

    private const string HkdfAhMnToHa = "42e70ad2ae704dc484ae6abb1e9ab68a00af6a10d8d6d146d53825da16abf9cf";

    private static byte[] BindingUpdate()
    {
        var datagram = new byte[104];
        new Ipv6Header(0, 0, 64, IpProtocol.DestinationOptions, 64, CareOf, HomeAgent).WriteTo(datagram);
        ExtensionHeaders.WriteHomeAddressOption(datagram.AsSpan(40), IpProtocol.AuthenticationHeader, Home);
        Sequence(0, 8).CopyTo(datagram.AsSpan(96));
        return datagram;
    }

    private static byte[] BindingAcknowledgement()
    {
        var datagram = new byte[104];
        new Ipv6Header(0, 0, 64, IpProtocol.Routing, 64, HomeAgent, CareOf).WriteTo(datagram);
        ExtensionHeaders.WriteRoutingType2(datagram.AsSpan(40), IpProtocol.AuthenticationHeader, Home);
        Sequence(0, 8).CopyTo(datagram.AsSpan(96));
        return datagram;
    }

    private static byte[] Sequence(int first, int length) => Enumerable.Range(first, length).Select(i => (byte)i).ToArray();
}
