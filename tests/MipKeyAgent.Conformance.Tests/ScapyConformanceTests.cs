using System.Text.Json;
using MipKeyAgent.Esp;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Conformance.Tests;

/// <summary>
/// Holds our codecs against scapy (packet building and its ESP SecurityAssociation) and the
/// `cryptography` package (a second ESP implementation): each side must read what the other
/// writes, field by field.
/// </summary>
public sealed class ScapyConformanceTests
{
    private const uint MnToHaSpi = 0x100;
    private const uint HaToMnSpi = 0x101;
    private static readonly string Nonce = new('a', 32);

    public static TheoryData<EspSuite> Suites => new() { EspSuite.AesGcm256, EspSuite.AesCbc128HmacSha256 };

    [Theory]
    [MemberData(nameof(Suites))]
    public void ScapyBindingUpdateWithKeyInit_OurCodecs_DecryptAndParseEveryField(EspSuite suite)
    {
        var key = WirePackets.KeyMaterial(suite, 0x10);
        var built = Oracles.Scapy("build", new
        {
            message = "bu", src = WirePackets.CareOf.ToString(), dst = WirePackets.HomeAgent.ToString(),
            hoa = WirePackets.HomeAddress.ToString(), seq = 4711, lifetime = 100,
            altcoa = WirePackets.CareOf.ToString(),
            mipkey = new object[] { new { type = "init", epoch = 9, nonce = Nonce } },
            suite = (int)suite, key = Convert.ToHexString(key), spi = MnToHaSpi, esp_seq = 3,
        });
        var datagram = Convert.FromHexString(built.GetProperty("hex").GetString()!);

        using var sa = new SecurityAssociation(MnToHaSpi, suite, key);
        var mhBytes = WirePackets.OpenMobilityHeader(datagram, sa, out var parsed);

        Assert.Equal(WirePackets.HomeAddress, parsed.HomeAddress);
        Assert.Null(parsed.RoutingHomeAddress);
        Assert.Equal(3u, sa.ReplayWindow.RightEdge);
        Assert.True(MobilityHeader.VerifyChecksum(mhBytes, WirePackets.HomeAddress, WirePackets.HomeAgent));
        Assert.True(MobilityHeader.TryParse(mhBytes, out var mh).IsOk);
        Assert.Equal(MobilityHeaderType.BindingUpdate, mh.Type);
        Assert.True(mh.TryGetBindingUpdate(out var bu));
        Assert.Equal(4711, bu.Sequence);
        Assert.Equal(BindingUpdateFlags.Acknowledge | BindingUpdateFlags.HomeRegistration, bu.Flags);
        Assert.Equal(100, bu.LifetimeUnits);
        Assert.True(bu.Options.TryGetAlternateCareOfAddress(out var altCoa));
        Assert.Equal(WirePackets.CareOf, altCoa);
        Assert.True(bu.Options.TryGetKeyInitRequest(MipKey.DefaultVendorId, out var init));
        Assert.Equal(9ul, init.InitEpoch);
        Assert.Equal(UInt128.Parse(Nonce, System.Globalization.NumberStyles.HexNumber), init.Nonce);
        Assert.False(bu.Options.TryGetKeyUpdateRequest(MipKey.DefaultVendorId, out _));
    }

    [Theory]
    [MemberData(nameof(Suites))]
    public void ScapyBindingAckWithKeyDistribution_OurCodecs_DecryptAndParseEveryField(EspSuite suite)
    {
        var key = WirePackets.KeyMaterial(suite, 0x40);
        var wrapped = new string('c', 80);
        var built = Oracles.Scapy("build", new
        {
            message = "ba", src = WirePackets.HomeAgent.ToString(), dst = WirePackets.CareOf.ToString(),
            hoa = WirePackets.HomeAddress.ToString(), seq = 4711, lifetime = 100,
            mipkey = new object[]
            {
                new { type = "dist", generation = 7, suite = 1, spi_mn_ha = 300, spi_ha_mn = 301, lifetime = 3600, wrapped },
                new { type = "status", code = 1, retry_after = 30 },
            },
            suite = (int)suite, key = Convert.ToHexString(key), spi = HaToMnSpi,
        });
        var datagram = Convert.FromHexString(built.GetProperty("hex").GetString()!);

        using var sa = new SecurityAssociation(HaToMnSpi, suite, key);
        var mhBytes = WirePackets.OpenMobilityHeader(datagram, sa, out var parsed);

        Assert.Equal(WirePackets.HomeAddress, parsed.RoutingHomeAddress);
        Assert.True(MobilityHeader.VerifyChecksum(mhBytes, WirePackets.HomeAgent, WirePackets.HomeAddress));
        Assert.True(MobilityHeader.TryParse(mhBytes, out var mh).IsOk);
        Assert.True(mh.TryGetBindingAcknowledgement(out var ba));
        Assert.Equal(BindingAckStatus.Accepted, ba.Status);
        Assert.Equal(4711, ba.Sequence);
        Assert.True(ba.Options.TryGetKeyDistribution(MipKey.DefaultVendorId, out var dist));
        Assert.Equal(7u, dist.Generation);
        Assert.Equal(1, dist.Suite);
        Assert.Equal(KeyDistributionFlags.None, dist.Flags);
        Assert.Equal(300u, dist.SpiMnToHa);
        Assert.Equal(301u, dist.SpiHaToMn);
        Assert.Equal(3600u, dist.KeyLifetimeSeconds);
        Assert.Equal(Convert.FromHexString(wrapped), dist.WrappedKey.ToArray());
        Assert.True(ba.Options.TryGetKeyStatus(MipKey.DefaultVendorId, out var status));
        Assert.Equal(new KeyStatus(KeyStatusCode.KeySourceUnavailable, 30), status);
    }

    [Theory]
    [MemberData(nameof(Suites))]
    public void OurBindingUpdate_ScapyAndCryptography_DecryptAndDissectEveryField(EspSuite suite)
    {
        var key = WirePackets.KeyMaterial(suite, 0x20);
        using var sa = new SecurityAssociation(MnToHaSpi, suite, key);
        var datagram = WirePackets.BindingUpdate(sa, 513, (ref MobilityHeaderWriter w) =>
        {
            w.WriteAlternateCareOfAddress(WirePackets.CareOf);
            w.WriteKeyUpdateRequest(MipKey.DefaultVendorId, new KeyUpdateRequest(41));
        });

        var seen = Check(datagram, suite, key);

        Assert.Equal((int)MnToHaSpi, seen.GetProperty("spi").GetInt32());
        Assert.Equal(1, seen.GetProperty("esp_seq").GetInt32());
        Assert.Equal(135, seen.GetProperty("next_header").GetInt32());
        Assert.Equal("2001:db8:1::100", seen.GetProperty("hoa").GetString());
        Assert.True(seen.GetProperty("checksum_ok").GetBoolean());
        Assert.Equal(5, seen.GetProperty("mh_type").GetInt32());
        Assert.Equal(0, seen.GetProperty("mh_len").GetInt32() % 8);
        Assert.Equal(513, seen.GetProperty("seq").GetInt32());
        Assert.Equal(0xC000, seen.GetProperty("flags").GetInt32());
        Assert.Equal(100, seen.GetProperty("lifetime").GetInt32());
        var options = seen.GetProperty("options").EnumerateArray().ToArray();
        Assert.Equal(2, options.Length);
        Assert.Equal("2001:db8:2::100", options[0].GetProperty("altcoa").GetString());
        Assert.Equal(19, options[1].GetProperty("type").GetInt32());
        Assert.Equal(32473, options[1].GetProperty("vendor_id").GetInt32());
        Assert.Equal(2, options[1].GetProperty("sub_type").GetInt32());
        Assert.Equal(1, options[1].GetProperty("version").GetInt32());
        Assert.Equal("00000029", options[1].GetProperty("data").GetString());
    }

    [Theory]
    [MemberData(nameof(Suites))]
    public void OurBindingAckWithKeyDistribution_ScapyAndCryptography_DecryptAndDissectEveryField(EspSuite suite)
    {
        var key = WirePackets.KeyMaterial(suite, 0x30);
        using var sa = new SecurityAssociation(HaToMnSpi, suite, key);
        var wrapped = Enumerable.Range(0, KeyWrap.WrappedLength).Select(i => (byte)i).ToArray();
        var datagram = WirePackets.BindingAcknowledgement(sa, 513, (ref MobilityHeaderWriter w) =>
            w.WriteKeyDistributionWrapped(MipKey.DefaultVendorId, 2, 1, 0x1234, 0x5678, 600, wrapped));

        var seen = Check(datagram, suite, key);

        Assert.Equal((int)HaToMnSpi, seen.GetProperty("spi").GetInt32());
        Assert.Equal("2001:db8:1::100", seen.GetProperty("rh2").GetString());
        Assert.True(seen.GetProperty("checksum_ok").GetBoolean());
        Assert.Equal(6, seen.GetProperty("mh_type").GetInt32());
        Assert.Equal(0, seen.GetProperty("status").GetInt32());
        Assert.Equal(0, seen.GetProperty("flags").GetInt32());
        Assert.Equal(513, seen.GetProperty("seq").GetInt32());
        var option = Assert.Single(seen.GetProperty("options").EnumerateArray());
        Assert.Equal(4, option.GetProperty("sub_type").GetInt32());
        Assert.Equal(
            "00000002" + "01" + "00" + "0000" + "00001234" + "00005678" + "00000258" + Convert.ToHexString(wrapped),
            option.GetProperty("data").GetString(), ignoreCase: true);
    }

    private static JsonElement Check(byte[] datagram, EspSuite suite, byte[] key) =>
        Oracles.Scapy("check", new { hex = Convert.ToHexString(datagram), suite = (int)suite, key = Convert.ToHexString(key) });
}
