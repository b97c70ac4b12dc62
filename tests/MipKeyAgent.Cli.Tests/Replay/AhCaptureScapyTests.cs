using System.Diagnostics;
using System.Text.Json;
using MipKeyAgent.Esp;
using MipKeyAgent.Transport;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Cli.Tests.Replay;

/// <summary>
/// scapy's AH (an independent RFC 4302 implementation, Debian's python3-scapy) verifies the ICV of
/// every AH datagram in every suite-3 golden capture, with the keys the replay recovered from the
/// provisioning file. scapy checks a packet as the receiver's IPsec sees it (its verify zeroes the
/// mutable fields and reorders nothing), so the oracle first does what RFC 6275 has the receiving IP
/// layer do before IPsec (sections 9.3.1 and 6.4): swap the Home Address option with the source, and
/// process the type 2 routing header (destination = home address, Segments Left 0).
/// </summary>
public sealed class AhCaptureScapyTests
{
    public static TheoryData<string> Names => [.. GoldenCaptures.All.Where(s => s.Options.Suite == EspSuite.AhHmacSha256).Select(s => s.Name)];

    // BRR, BU, BA (RFC 6275 section 6.1).
    private static readonly int[] MobilityHeaderTypes = [0, 5, 6];

    private const string Oracle = """
        import json, sys
        from scapy.layers.inet6 import IPv6, HAO, IPv6ExtHdrDestOpt, IPv6ExtHdrRouting
        from scapy.layers.ipsec import AH, SecurityAssociation, IPSecIntegrityError
        from scapy.packet import bind_layers, raw
        # scapy binds AH after the IPv6 header only; after the Home Address option or RH2 it is AH too (RFC 4302 section 3.1.1).
        bind_layers(IPv6ExtHdrDestOpt, AH, nh=51)
        bind_layers(IPv6ExtHdrRouting, AH, nh=51)
        cases = json.loads(sys.stdin.read())
        out = []
        for c in cases:
            pkt = IPv6(bytes.fromhex(c["hex"]))
            if pkt.haslayer(HAO):
                pkt[HAO].hoa, pkt.src = pkt.src, pkt[HAO].hoa
            if pkt.haslayer(IPv6ExtHdrRouting) and pkt[IPv6ExtHdrRouting].type == 2 and pkt[IPv6ExtHdrRouting].segleft > 0:
                rh = pkt[IPv6ExtHdrRouting]
                rh.addresses, pkt.dst = [pkt.dst], rh.addresses[0]
                rh.segleft = 0
            pkt = IPv6(raw(pkt))
            seq = pkt[AH].seq
            sa = SecurityAssociation(AH, spi=pkt[AH].spi, auth_algo="SHA2-256-128", auth_key=bytes.fromhex(c["key"]))
            try:
                plain = sa.decrypt(pkt)
                out.append({"ok": True, "seq": seq, "mh": raw(plain.lastlayer())[2]})
            except IPSecIntegrityError as e:
                out.append({"ok": False, "error": str(e)})
        print(json.dumps(out))
        """;

    [Theory]
    [MemberData(nameof(Names))]
    public void AhGoldenCapture_ScapyAh_EveryIcvVerifiesAndTamperedCopiesFail(string name)
    {
        var report = CaptureFiles.Replay(name);
        var keys = report.SecurityAssociations.Where(s => s.Suite == EspSuite.AhHmacSha256)
            .GroupBy(s => s.Spi).ToDictionary(g => g.Key, g => Convert.ToHexString(g.First().KeyMaterial));
        var datagrams = AhDatagrams(CaptureFiles.Pcap(name));
        Assert.True(datagrams.Count >= 4, $"{name}: {datagrams.Count} AH datagrams");
        var cases = new List<object>();
        foreach (var (datagram, spi) in datagrams)
        {
            Assert.True(keys.TryGetValue(spi, out var key), $"no recovered AH key for SPI {spi}");
            cases.Add(new { hex = Convert.ToHexString(datagram), key });
            // The same datagram with one octet of its Mobility Header changed: scapy must refuse it.
            var tampered = (byte[])datagram.Clone();
            tampered[^1] ^= 0x01;
            cases.Add(new { hex = Convert.ToHexString(tampered), key });
        }

        var results = RunScapy(JsonSerializer.Serialize(cases));

        Assert.Equal(cases.Count, results.GetArrayLength());
        for (int i = 0; i < datagrams.Count; i++)
        {
            var genuine = results[2 * i];
            Assert.True(genuine.GetProperty("ok").GetBoolean(), $"{name} AH datagram {i}: {genuine}");
            Assert.Contains(genuine.GetProperty("mh").GetInt32(), MobilityHeaderTypes);
            Assert.False(results[2 * i + 1].GetProperty("ok").GetBoolean(), $"{name} tampered AH datagram {i} verified");
        }
    }

    private static List<(byte[] Datagram, uint Spi)> AhDatagrams(string pcap)
    {
        var found = new List<(byte[], uint)>();
        Assert.True(CaptureFileReader.TryOpen(pcap, out var reader).IsOk);
        using (reader)
        {
            while (reader!.TryReadNext(out var record, out bool end).IsOk && !end)
            {
                Assert.True(LinkLayer.TryGetIpv6(record.LinkType, record.Data.Span, out int offset).IsOk);
                var datagram = record.Data[offset..].ToArray();
                if (Ipv6Datagram.TryParse(datagram, out var parsed).IsOk && parsed.UpperProtocol == IpProtocol.AuthenticationHeader)
                {
                    Assert.True(SecurityAssociation.TryPeekAuthenticationHeaderSpi(parsed.GetUpper(datagram), out uint spi).IsOk);
                    found.Add((datagram, spi));
                }
            }
        }
        return found;
    }

    private static JsonElement RunScapy(string input)
    {
        const string python = "/usr/bin/python3";
        Assert.True(File.Exists(python), "Debian's python3 (with python3-scapy) is missing: run ./test.sh");
        var start = new ProcessStartInfo(python) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(Oracle);
        start.Environment.Remove("PYTHONPATH");
        start.Environment.Remove("PYTHONHOME");
        using var process = Process.Start(start)!;
        process.StandardInput.Write(input);
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(120_000), "scapy did not finish");
        Assert.True(process.ExitCode == 0, error.Result);
        return JsonDocument.Parse(output.Result).RootElement.Clone();
    }
}
