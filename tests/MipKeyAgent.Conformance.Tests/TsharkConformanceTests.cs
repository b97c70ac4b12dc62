using MipKeyAgent.Esp;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Conformance.Tests;

/// <summary>
/// tshark (Debian) dissects a pcap we write: it must find no malformed packet and no
/// warning, and with the SAs in its esp_sa table it must decrypt our ESP and show the
/// Mobility Header fields we put in.
/// </summary>
public sealed class TsharkConformanceTests : IDisposable
{
    private readonly string _pcap = Path.Combine(Path.GetTempPath(), $"mipkey-tshark-{Guid.NewGuid():N}.pcap");

    public void Dispose() => File.Delete(_pcap);

    [Fact]
    public void OurProtectedExchange_Tshark_DissectsWithoutWarningsAndDecryptsBothSuites()
    {
        var gcmBu = WirePackets.KeyMaterial(EspSuite.AesGcm256, 0x01);
        var gcmBa = WirePackets.KeyMaterial(EspSuite.AesGcm256, 0x51);
        var cbcBu = WirePackets.KeyMaterial(EspSuite.AesCbc128HmacSha256, 0x11);
        var cbcBa = WirePackets.KeyMaterial(EspSuite.AesCbc128HmacSha256, 0x61);
        using var sa1 = new SecurityAssociation(0x100, EspSuite.AesGcm256, gcmBu);
        using var sa2 = new SecurityAssociation(0x101, EspSuite.AesGcm256, gcmBa);
        using var sa3 = new SecurityAssociation(0x200, EspSuite.AesCbc128HmacSha256, cbcBu);
        using var sa4 = new SecurityAssociation(0x201, EspSuite.AesCbc128HmacSha256, cbcBa);
        var wrapped = new byte[KeyWrap.WrappedLength];
        var nonce = UInt128.Parse("0123456789abcdef0123456789abcdef", System.Globalization.NumberStyles.HexNumber);

        var packets = new[]
        {
            WirePackets.BindingUpdate(sa1, 10, (ref MobilityHeaderWriter w) =>
            {
                w.WriteAlternateCareOfAddress(WirePackets.CareOf);
                w.WriteKeyInitRequest(MipKey.DefaultVendorId, new KeyInitRequest(1, nonce));
            }),
            WirePackets.BindingAcknowledgement(sa2, 10, (ref MobilityHeaderWriter w) =>
                w.WriteKeyDistributionWrapped(MipKey.DefaultVendorId, 1, 1, 0x300, 0x301, 600, wrapped)),
            WirePackets.BindingUpdate(sa3, 11, (ref MobilityHeaderWriter w) =>
            {
                w.WriteAlternateCareOfAddress(WirePackets.CareOf);
                w.WriteKeyResendRequest(MipKey.DefaultVendorId, new KeyResendRequest(1));
            }),
            WirePackets.BindingAcknowledgement(sa4, 11, (ref MobilityHeaderWriter w) =>
                w.WriteKeyStatus(MipKey.DefaultVendorId, new KeyStatus(KeyStatusCode.KeySourceUnavailable, 5))),
        };
        using (var file = File.Create(_pcap))
        using (var writer = new PcapWriter(file, PcapLinkType.Ipv6))
        {
            var t = new DateTimeOffset(2026, 11, 21, 12, 0, 0, TimeSpan.Zero);
            foreach (var p in packets)
            {
                writer.Write(t, p);
                t = t.AddMilliseconds(10);
            }
        }

        string[] sas =
        [
            Sa(0x100, "AES-GCM with 16 octet ICV [RFC4106]", gcmBu, "NULL", []),
            Sa(0x101, "AES-GCM with 16 octet ICV [RFC4106]", gcmBa, "NULL", []),
            Sa(0x200, "AES-CBC [RFC3602]", cbcBu[..16], "HMAC-SHA-256-128 [RFC4868]", cbcBu[16..]),
            Sa(0x201, "AES-CBC [RFC3602]", cbcBa[..16], "HMAC-SHA-256-128 [RFC4868]", cbcBa[16..]),
        ];
        var args = new List<string> { "-r", _pcap, "-o", "esp.enable_encryption_decode:TRUE", "-o", "esp.enable_authentication_check:TRUE" };
        foreach (var sa in sas)
        {
            args.AddRange(["-o", sa]);
        }

        var (code, verbose, stderr) = Oracles.TShark([.. args, "-V"]);
        Assert.True(code == 0, stderr);
        Assert.DoesNotContain("Malformed", verbose, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("[Expert Info (Warning", verbose, StringComparison.Ordinal);
        Assert.DoesNotContain("[Expert Info (Error", verbose, StringComparison.Ordinal);
        Assert.Contains("Example Enterprise Number for Documentation Use", verbose, StringComparison.Ordinal);

        var (code2, fields, stderr2) = Oracles.TShark(
            [.. args, "-T", "fields", "-E", "separator=|",
             "-e", "esp.spi", "-e", "esp.sequence", "-e", "mip6.mhtype", "-e", "mip6.bu.seqnr", "-e", "mip6.ba.seqnr",
             "-e", "mip6.vsm.vendorId", "-e", "mip6.vsm.subtype", "-e", "ipv6.opt.mipv6.home_address",
             "-e", "ipv6.routing.mipv6.home_address", "-e", "mip6.acoa.acoa", "-e", "_ws.malformed"]);
        Assert.True(code2 == 0, stderr2);
        var rows = fields.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('|')).ToArray();
        Assert.Equal(4, rows.Length);
        // Columns: spi | esp seq | MH type | BU seq | BA seq | vendor | sub-type | HAO | RH2 | AltCoA | malformed
        AssertRow(rows[0], "0x00000100", "5", "10", "", "1", "2001:db8:1::100", "", "2001:db8:2::100");
        AssertRow(rows[1], "0x00000101", "6", "", "10", "4", "", "2001:db8:1::100", "");
        AssertRow(rows[2], "0x00000200", "5", "11", "", "3", "2001:db8:1::100", "", "2001:db8:2::100");
        AssertRow(rows[3], "0x00000201", "6", "", "11", "5", "", "2001:db8:1::100", "");
    }

    private static void AssertRow(string[] row, string spi, string mhType, string buSeq, string baSeq, string subType, string hao, string rh2, string altCoa)
    {
        var text = string.Join('|', row);
        Assert.True(row.Length == 11, text);
        Assert.Equal(spi, row[0]);
        Assert.Equal("1", row[1]);
        Assert.Equal(mhType, row[2]);
        Assert.Equal(buSeq, row[3]);
        Assert.Equal(baSeq, row[4]);
        Assert.Equal("32473", row[5]);
        Assert.Equal(subType, row[6]);
        Assert.Equal(hao, row[7]);
        Assert.Equal(rh2, row[8]);
        Assert.Equal(altCoa, row[9]);
        Assert.Equal("", row[10]);
    }

    private static string Sa(uint spi, string encryption, byte[] encKey, string auth, byte[] authKey) =>
        $"uat:esp_sa:\"IPv6\",\"*\",\"*\",\"0x{spi:x8}\",\"{encryption}\",\"0x{Convert.ToHexString(encKey)}\",\"{auth}\",\"{(authKey.Length == 0 ? "" : "0x" + Convert.ToHexString(authKey))}\"";
}
