using MipKeyAgent.TestSupport;
using MipKeyAgent.Wire;
using Xunit.Abstractions;

namespace MipKeyAgent.Transport.Tests.Capture;

public sealed class CaptureFileReaderTests(ITestOutputHelper output)
{
    private static readonly DateTimeOffset Epoch1700000000 = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000);

    // pcapng laid out by hand per draft-ietf-opsawg-pcapng: two interfaces of link type IPv6 (229) with
    // different timestamp resolutions, a block libpcap skips, then a second, big-endian section.
    internal const string TwoInterfacePcapNg =
        // SHB: type, total length 28, byte-order magic, version 1.0, section length -1, total length.
        "0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 1c000000" +
        // IDB 0: LINKTYPE_IPV6, snaplen 262144, no options (microseconds).
        "01000000 14000000 e500 0000 00000400 14000000" +
        // IDB 1: LINKTYPE_IPV6, snaplen 262144, if_tsresol = 9 (nanoseconds), opt_endofopt.
        "01000000 20000000 e500 0000 00000400 09000100 09000000 00000000 20000000" +
        // NRB (type 4) holding only nrb_record_end: skipped.
        "04000000 10000000 00000000 10000000" +
        // EPB on interface 1: 1700000000.123456789 s in ns, 5 octets captured, padded to 8.
        "06000000 28000000 01000000 fe9c9717 15cd853d 05000000 05000000 6000000000 000000 28000000" +
        // EPB on interface 0: 1700000000.123456 s in us, 4 of 60 octets captured.
        "06000000 24000000 00000000 240a0600 40222018 04000000 3c000000 60000001 24000000" +
        // Second section: SHB, IDB 0 IPv6, EPB at 1700000001.000000 s.
        "0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 1c000000" +
        "01000000 14000000 e500 0000 00000400 14000000" +
        "06000000 24000000 00000000 240a0600 40822d18 04000000 04000000 deadbeef 24000000";

    [Theory]
    [InlineData(PcapLinkType.Ethernet)]
    [InlineData(PcapLinkType.Ipv6)]
    [InlineData(PcapLinkType.Raw)]
    [InlineData(PcapLinkType.LinuxSll)]
    [InlineData(PcapLinkType.LinuxSll2)]
    [InlineData(PcapLinkType.Null)]
    public void WriteThenRead_SeveralFrames_RoundTrip(PcapLinkType linkType)
    {
        var stream = new MemoryStream();
        var frames = new[] { Enumerable.Range(1, 60).Select(i => (byte)i).ToArray(), Enumerable.Range(2, 1500).Select(i => (byte)i).ToArray(), Array.Empty<byte>() };
        var times = new[] { Epoch1700000000.AddTicks(1_234_560), Epoch1700000000.AddSeconds(5), DateTimeOffset.UnixEpoch };
        using (var writer = new PcapWriter(stream, linkType, leaveOpen: true))
        {
            for (int i = 0; i < frames.Length; i++)
            {
                writer.Write(times[i], frames[i]);
            }
        }

        stream.Position = 0;
        Assert.True(CaptureFileReader.TryOpen(stream, out CaptureFileReader? reader).IsOk);
        using (reader)
        {
            Assert.Equal(linkType, reader!.LinkType);
            for (int i = 0; i < frames.Length; i++)
            {
                Assert.True(reader.TryReadNext(out PcapRecord record, out bool end).IsOk);
                Assert.False(end);
                Assert.Equal(times[i], record.Timestamp);
                Assert.Equal(linkType, record.LinkType);
                Assert.Equal(frames[i], record.Data.ToArray());
                Assert.Equal(frames[i].Length, record.OriginalLength);
            }

            Assert.True(reader.TryReadNext(out _, out bool endOfFile).IsOk);
            Assert.True(endOfFile);
        }
    }

    [Fact]
    public void TryOpen_FilePath_ReadsTheSameAsTheStream()
    {
        string path = Path.Combine(Path.GetTempPath(), $"mipkey-reader-{Guid.NewGuid():N}.pcap");
        try
        {
            File.WriteAllBytes(path, Hex("4d3cb2a1 0200 0400 00000000 00000000 ffff0000 e5000000 00f15365 15cd5b07 02000000 02000000 abcd"));
            Assert.True(CaptureFileReader.TryOpen(path, out CaptureFileReader? reader).IsOk);
            using (reader)
            {
                Assert.True(reader!.TryReadNext(out PcapRecord record, out _).IsOk);
                Assert.Equal("abcd", Convert.ToHexStringLower(record.Data.Span));
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void TryOpen_MissingFile_ErrorNamesIt()
    {
        var error = CaptureFileReader.TryOpen("/nonexistent/capture.pcap", out var reader);
        Assert.Null(reader);
        Assert.Contains("/nonexistent/capture.pcap", error.What, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_BigEndianClassicFile_FieldsInHostTerms()
    {
        using CaptureFileReader reader = Open(
            "a1b2c3d4 0002 0004 00000000 00000000 0000ffff 00000065" +
            "6553f100 0001e240 00000004 00000006 60000000");
        Assert.True(reader.TryReadNext(out PcapRecord record, out _).IsOk);
        Assert.Equal(Epoch1700000000.AddTicks(1_234_560), record.Timestamp);
        Assert.Equal(PcapLinkType.Raw, record.LinkType);
        Assert.Equal("60000000", Convert.ToHexStringLower(record.Data.Span));
        Assert.Equal(6, record.OriginalLength);
    }

    [Fact]
    public void Read_NanosecondMagic_FractionInNanoseconds()
    {
        using CaptureFileReader reader = Open(
            "4d3cb2a1 0200 0400 00000000 00000000 ffff0000 01000000" +
            "00f15365 15cd5b07 02000000 02000000 abcd");
        Assert.True(reader.TryReadNext(out PcapRecord record, out _).IsOk);
        // 123456789 ns = 1234567 ticks and 89 ns below tick resolution.
        Assert.Equal(Epoch1700000000.AddTicks(1_234_567), record.Timestamp);
        Assert.Equal(PcapLinkType.Ethernet, record.LinkType);
    }

    [Fact]
    public void Read_PcapNgTwoInterfacesTwoSections_EveryPacketWithItsInterfaceResolution()
    {
        using CaptureFileReader reader = Open(TwoInterfacePcapNg);
        Assert.Equal(PcapLinkType.Ipv6, reader.LinkType);

        Assert.True(reader.TryReadNext(out PcapRecord r1, out _).IsOk);
        Assert.Equal(Epoch1700000000.AddTicks(1_234_567), r1.Timestamp);
        Assert.Equal("6000000000", Convert.ToHexStringLower(r1.Data.Span));
        Assert.Equal(5, r1.OriginalLength);

        Assert.True(reader.TryReadNext(out PcapRecord r2, out _).IsOk);
        Assert.Equal(Epoch1700000000.AddTicks(1_234_560), r2.Timestamp);
        Assert.Equal("60000001", Convert.ToHexStringLower(r2.Data.Span));
        Assert.Equal(60, r2.OriginalLength);

        Assert.True(reader.TryReadNext(out PcapRecord r3, out _).IsOk);
        Assert.Equal(Epoch1700000000.AddSeconds(1), r3.Timestamp);
        Assert.Equal("deadbeef", Convert.ToHexStringLower(r3.Data.Span));

        Assert.True(reader.TryReadNext(out _, out bool end).IsOk);
        Assert.True(end);
    }

    [Fact]
    public void Read_PcapNgBinaryResolutionAndOffset_Converted()
    {
        // IDB with if_tsresol = 0x80 | 10 (2^-10 s) and if_tsoffset = 1700000000 s; EPB at 1536 units = 1.5 s.
        using CaptureFileReader reader = Open(
            "0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 1c000000" +
            "01000000 2c000000 e500 0000 00000000 09000100 8a000000 0e000800 00f1536500000000 00000000 2c000000" +
            "06000000 20000000 00000000 00000000 00060000 00000000 00000000 20000000");
        Assert.True(reader.TryReadNext(out PcapRecord record, out _).IsOk);
        Assert.Equal(Epoch1700000000.AddSeconds(1.5), record.Timestamp);
        Assert.Empty(record.Data.ToArray());
    }

    [Theory]
    // Two interfaces of different link types (Ethernet, IPv6).
    [InlineData("0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 1c000000" +
        "01000000 14000000 0100 0000 00000400 14000000" +
        "01000000 14000000 e500 0000 00000400 14000000" +
        "06000000 24000000 01000000 00000000 00000000 04000000 04000000 60000000 24000000")]
    // Two interfaces of different snapshot lengths.
    [InlineData("0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 1c000000" +
        "01000000 14000000 e500 0000 00000400 14000000" +
        "01000000 14000000 e500 0000 ffff0000 14000000" +
        "06000000 24000000 01000000 00000000 00000000 04000000 04000000 60000000 24000000")]
    // A second section in the other byte order.
    [InlineData("0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 1c000000" +
        "01000000 14000000 e500 0000 00000400 14000000" +
        "0a0d0d0a 0000001c 1a2b3c4d 0001 0000 ffffffffffffffff 0000001c" +
        "00000001 00000014 00e5 0000 0000ffff 00000014" +
        "00000006 00000024 00000000 00060a24 182d8240 00000004 00000004 deadbeef 00000024")]
    public void Read_PcapNgLibpcapDoesNotRead_ErrorNotException(string hex)
    {
        // libpcap's limits (docs/wire-esp.md): one link type and one snapshot length per file, one byte order per file.
        var error = TryOpen(hex, out var reader);
        if (error.IsOk)
        {
            using (reader)
            {
                error = reader!.TryReadNext(out _, out _);
            }
        }

        Assert.False(error.IsOk);
        output.WriteLine(error.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("d4c3b2")]
    [InlineData("00112233445566778899")]
    [InlineData("d4c3b2a1 0200 0400 00000000")]
    [InlineData("d4c3b2a1 0300 0400 00000000 00000000 ffff0000 01000000")]
    [InlineData("0a0d0d0a 1c000000 11223344")]
    [InlineData("0a0d0d0a 1c000000 4d3c2b1a 0200 0000 ffffffffffffffff 1c000000")]
    [InlineData("0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 20000000")]
    [InlineData("0a0d0d0a 1a000000 4d3c2b1a 0100 0000 ffffffffffffffff 1a000000")]
    [InlineData("0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffff")]
    public void TryOpen_MalformedHeaders_ErrorWithLibpcapsMessage(string hex)
    {
        WireError error = TryOpen(hex, out CaptureFileReader? reader);
        Assert.False(error.IsOk);
        Assert.False(string.IsNullOrWhiteSpace(error.What));
        Assert.Null(reader);
    }

    [Theory]
    // Classic record header cut short, then record data cut short.
    [InlineData("d4c3b2a1 0200 0400 00000000 00000000 ffff0000 01000000 00f15365 40e2")]
    [InlineData("d4c3b2a1 0200 0400 00000000 00000000 ffff0000 01000000 00f15365 40e20100 04000000 04000000 dead")]
    // Classic captured length far above the snapshot length.
    [InlineData("d4c3b2a1 0200 0400 00000000 00000000 ffff0000 01000000 00f15365 40e20100 00000010 04000000")]
    // pcapng EPB naming an interface that was never described.
    [InlineData("0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 1c000000 01000000 14000000 0100 0000 00000400 14000000 06000000 20000000 05000000 00000000 00000000 00000000 00000000 20000000")]
    // pcapng EPB whose captured length exceeds its block.
    [InlineData("0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 1c000000 01000000 14000000 0100 0000 00000400 14000000 06000000 20000000 00000000 00000000 00000000 01000000 01000000 20000000")]
    // pcapng block cut short.
    [InlineData("0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 1c000000 01000000 14000000 0100 0000 00000400 14000000 06000000 20000000 0000")]
    public void TryReadNext_MalformedRecords_Error(string hex)
    {
        WireError error = TryOpen(hex, out CaptureFileReader? reader);
        if (error.IsOk)
        {
            using (reader)
            {
                error = reader!.TryReadNext(out _, out bool end);
                Assert.False(end);
            }
        }

        Assert.False(error.IsOk);
        Assert.False(string.IsNullOrWhiteSpace(error.What));
    }

    [Fact]
    public void MutatedFiles_NeverThrow()
    {
        const int Inputs = 100_000;
        var random = new Random(1988);
        var bases = new List<byte[]>
        {
            Hex(TwoInterfacePcapNg),
            Hex("a1b2c3d400020004000000000000000000" + "00ffff00000065" + "6553f1000001e2400000000400000006" + "60000000"),
            Hex("4d3cb2a1020004000000000000000000ffff000001000000" + "00f1536515cd5b070200000002000000abcd"),
            ClassicFile(),
        };

        int rejected = 0;
        int records = 0;
        for (int i = 0; i < Inputs; i++)
        {
            byte[] mutant = Mutation.Mutate(random, bases[random.Next(bases.Count)]);
            WireError error = CaptureFileReader.TryOpen(new MemoryStream(mutant), out CaptureFileReader? reader);
            if (error.IsOk)
            {
                using (reader)
                {
                    for (int n = 0; n < 64; n++)
                    {
                        error = reader!.TryReadNext(out PcapRecord record, out bool end);
                        if (!error.IsOk || end)
                        {
                            break;
                        }

                        records++;
                        Assert.InRange(record.Data.Length, 0, mutant.Length);
                    }
                }
            }

            if (!error.IsOk)
            {
                rejected++;
                Assert.True(Enum.IsDefined(error.Kind));
            }
        }

        output.WriteLine($"mutation: CaptureFileReader {Inputs} inputs, {rejected} rejected, {records} records read");
        Assert.InRange(rejected, 1, Inputs);
    }

    [Fact]
    public void Probe_LibraryMissing_OneErrorNamingTheDebianPackage()
    {
        var e = Assert.Throws<LibpcapMissingException>(() => Libpcap.Probe<string>(() => throw new DllNotFoundException("Unable to load shared library 'libpcap'")));
        Assert.Contains("libpcap0.8", e.Message, StringComparison.Ordinal);
        var wrapped = Assert.Throws<LibpcapMissingException>(() => Libpcap.Probe<string>(
            () => throw new TypeInitializationException("SharpPcap.LibPcap.LibPcapSafeNativeMethods", new DllNotFoundException("wpcap"))));
        Assert.Contains("apt-get install libpcap0.8", wrapped.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Version_LibpcapOnThisMachine_Loads() => Assert.StartsWith("1.", Libpcap.Version, StringComparison.Ordinal);

    private static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", "", StringComparison.Ordinal));

    private static WireError TryOpen(string hex, out CaptureFileReader? reader) => CaptureFileReader.TryOpen(new MemoryStream(Hex(hex)), out reader);

    private static CaptureFileReader Open(string hex)
    {
        WireError error = TryOpen(hex, out CaptureFileReader? reader);
        Assert.Equal(WireError.None, error);
        return reader!;
    }

    private static byte[] ClassicFile()
    {
        var stream = new MemoryStream();
        using (var writer = new PcapWriter(stream, PcapLinkType.Ethernet, leaveOpen: true))
        {
            writer.Write(DateTimeOffset.FromUnixTimeSeconds(1_700_000_000), Enumerable.Range(0, 30).Select(i => (byte)i).ToArray());
            writer.Write(DateTimeOffset.FromUnixTimeSeconds(1_700_000_001), Enumerable.Range(3, 7).Select(i => (byte)i).ToArray());
        }

        return stream.ToArray();
    }
}
