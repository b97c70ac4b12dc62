using System.Text;
using MipKeyAgent.Esp;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Cli.Demo;

/// <summary>
/// Writes recovered SAs in the form tshark reads: lines of its <c>esp_sa</c> table (a
/// personal configuration directory, pointed to with WIRESHARK_CONFIG_DIR) and the equivalent
/// <c>-o uat:esp_sa:...</c> options.
/// </summary>
internal static class WiresharkKeyLog
{
    public const string GcmName = "AES-GCM with 16 octet ICV [RFC4106]";
    public const string CbcName = "AES-CBC [RFC3602]";
    public const string HmacSha256Name = "HMAC-SHA-256-128 [RFC4868]";

    /// <summary>One esp_sa record: protocol, source, destination, SPI, encryption, key, authentication, key.</summary>
    public static string Record(RecoveredSecurityAssociation sa)
    {
        ArgumentNullException.ThrowIfNull(sa);
        if (sa.Suite == EspSuite.AesGcm256)
        {
            // RFC 4106: the 36 octets are the 32-octet key then the 4-octet salt, as tshark expects.
            return $"\"IPv6\",\"*\",\"*\",\"0x{sa.Spi:x8}\",\"{GcmName}\",\"0x{Convert.ToHexString(sa.KeyMaterial)}\",\"NULL\",\"\"";
        }
        var encryption = sa.KeyMaterial.AsSpan(0, 16);
        var authentication = sa.KeyMaterial.AsSpan(16);
        return $"\"IPv6\",\"*\",\"*\",\"0x{sa.Spi:x8}\",\"{CbcName}\",\"0x{Convert.ToHexString(encryption)}\",\"{HmacSha256Name}\",\"0x{Convert.ToHexString(authentication)}\"";
    }

    /// <summary>Writes <c>esp_sa</c> and <c>preferences</c> into <paramref name="directory"/> (created).</summary>
    public static void WriteConfigDirectory(string directory, IEnumerable<RecoveredSecurityAssociation> sas)
    {
        Directory.CreateDirectory(directory);
        var table = new StringBuilder("# ESP SAs of a mipkey demo capture (throwaway test keys)\n");
        // AH SAs (suite 3) have no esp_sa record: tshark dissects AH's Mobility Header in clear.
        foreach (var sa in sas.Where(s => !EspSuites.IsAuthenticationHeader(s.Suite)))
        {
            table.Append(Record(sa)).Append('\n');
        }
        File.WriteAllText(Path.Combine(directory, "esp_sa"), table.ToString());
        File.WriteAllText(Path.Combine(directory, "preferences"),
            "esp.enable_encryption_decode: TRUE\nesp.enable_authentication_check: TRUE\n");
    }

    /// <summary>A shell script running tshark with every SA given as an -o option.</summary>
    public static string Script(string pcap, IEnumerable<RecoveredSecurityAssociation> sas)
    {
        var script = new StringBuilder("#!/bin/sh\n# Decrypts a mipkey demo capture (throwaway test keys).\nexec tshark -r '")
            .Append(pcap.Replace("'", "'\\''", StringComparison.Ordinal))
            .Append("' -o esp.enable_encryption_decode:TRUE -o esp.enable_authentication_check:TRUE \\\n");
        foreach (var sa in sas.Where(s => !EspSuites.IsAuthenticationHeader(s.Suite)))
        {
            script.Append("  -o 'uat:esp_sa:").Append(Record(sa)).Append("' \\\n");
        }
        script.Append("  \"$@\"\n");
        return script.ToString();
    }
}
