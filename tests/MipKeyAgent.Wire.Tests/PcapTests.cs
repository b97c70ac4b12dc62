namespace MipKeyAgent.Wire.Tests;

public sealed class PcapTests
{
    private static readonly DateTimeOffset Epoch1700000000 = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000);

    // pcapng laid out by hand per draft-ietf-opsawg-pcapng (tshark reads it as 4 packets with
    // these times, interfaces and lengths). Section 1 little-endian, section 2 big-endian.
    internal const string PcapNgFile =
        // SHB: type, total length 28, byte-order magic, version 1.0, section length -1, total length.
        "0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 1c000000" +
        // IDB 0: Ethernet, snaplen 262144, no options.
        "01000000 14000000 0100 0000 00000400 14000000" +
        // IDB 1: LINKTYPE_IPV6 (229), snaplen 65535, if_tsresol = 9 (nanoseconds), opt_endofopt.
        "01000000 20000000 e500 0000 ffff0000 09000100 09000000 00000000 20000000" +
        // NRB (type 4) holding only nrb_record_end: skipped.
        "04000000 10000000 00000000 10000000" +
        // EPB on interface 1: 1700000000.123456789 s in ns, 5 octets captured, padded to 8.
        "06000000 28000000 01000000 fe9c9717 15cd853d 05000000 05000000 6000000000 000000 28000000" +
        // EPB on interface 0: 1700000000.123456 s in us, 14 of 60 octets captured (Ethernet header).
        "06000000 30000000 00000000 240a0600 40222018 0e000000 3c000000 020000000001 020000000002 86dd 0000 30000000" +
        // SPB: original length 3, data aabbcc, padded.
        "03000000 14000000 03000000 aabbcc00 14000000" +
        // Second section, big-endian: SHB, IDB 0 raw IP, EPB at 1700000001.000000 s.
        "0a0d0d0a 0000001c 1a2b3c4d 0001 0000 ffffffffffffffff 0000001c" +
        "00000001 00000014 0065 0000 0000ffff 00000014" +
        "00000006 00000024 00000000 00060a24 182d8240 00000004 00000004 deadbeef 00000024";

    [Theory]
    [InlineData(PcapLinkType.Ethernet)]
    [InlineData(PcapLinkType.Ipv6)]
    [InlineData(PcapLinkType.Raw)]
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
        Assert.True(PcapReader.TryOpen(stream, out PcapReader? reader).IsOk);
        using (reader)
        {
            Assert.False(reader!.IsPcapNg);
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
    public void Write_OneFrame_ExactClassicLayout()
    {
        var stream = new MemoryStream();
        using (var writer = new PcapWriter(stream, PcapLinkType.Ipv6))
        {
            writer.Write(Epoch1700000000.AddTicks(1_234_560), Convert.FromHexString("deadbeef"));
        }

        Assert.Equal(
            "d4c3b2a1" + "0200" + "0400" + "00000000" + "00000000" + "ffff0000" + "e5000000" +
            "00f15365" + "40e20100" + "04000000" + "04000000" + "deadbeef",
            Convert.ToHexStringLower(stream.ToArray()));
    }

    [Fact]
    public void Write_FrameLongerThanSnapLength_CutWithOriginalLengthKept()
    {
        var stream = new MemoryStream();
        using (var writer = new PcapWriter(stream, PcapLinkType.Raw, leaveOpen: true))
        {
            writer.Write(Epoch1700000000, new byte[70_000]);
        }

        stream.Position = 0;
        Assert.True(PcapReader.TryOpen(stream, out PcapReader? reader).IsOk);
        Assert.True(reader!.TryReadNext(out PcapRecord record, out _).IsOk);
        Assert.Equal(65_535, record.Data.Length);
        Assert.Equal(70_000, record.OriginalLength);
    }

    [Fact]
    public void Write_TimestampBefore1970_Throws()
    {
        using var writer = new PcapWriter(new MemoryStream(), PcapLinkType.Raw);
        Assert.Throws<ArgumentOutOfRangeException>(() => writer.Write(DateTimeOffset.UnixEpoch.AddTicks(-1), []));
    }

    [Fact]
    public void Read_BigEndianClassicFile_FieldsInHostTerms()
    {
        PcapReader reader = Open(
            "a1b2c3d4 0002 0004 00000000 00000000 0000ffff 00000065" +
            "6553f100 0001e240 00000004 00000006 60000000");
        Assert.True(reader.IsBigEndian);
        Assert.True(reader.TryReadNext(out PcapRecord record, out _).IsOk);
        Assert.Equal(Epoch1700000000.AddTicks(1_234_560), record.Timestamp);
        Assert.Equal(PcapLinkType.Raw, record.LinkType);
        Assert.Equal("60000000", Convert.ToHexStringLower(record.Data.Span));
        Assert.Equal(6, record.OriginalLength);
    }

    [Fact]
    public void Read_NanosecondMagic_FractionInNanoseconds()
    {
        PcapReader reader = Open(
            "4d3cb2a1 0200 0400 00000000 00000000 ffff0000 01000000" +
            "00f15365 15cd5b07 02000000 02000000 abcd");
        Assert.True(reader.TryReadNext(out PcapRecord record, out _).IsOk);
        // 123456789 ns = 1234567 ticks and 89 ns below tick resolution.
        Assert.Equal(Epoch1700000000.AddTicks(1_234_567), record.Timestamp);
        Assert.Equal(PcapLinkType.Ethernet, record.LinkType);
    }

    [Fact]
    public void Read_HandBuiltPcapNg_AllPacketsWithInterfaceLinkTypesAndResolutions()
    {
        PcapReader reader = Open(PcapNgFile);
        Assert.True(reader.IsPcapNg);

        Assert.True(reader.TryReadNext(out PcapRecord r1, out _).IsOk);
        Assert.Equal(PcapLinkType.Ipv6, r1.LinkType);
        Assert.Equal(Epoch1700000000.AddTicks(1_234_567), r1.Timestamp);
        Assert.Equal("6000000000", Convert.ToHexStringLower(r1.Data.Span));
        Assert.Equal(5, r1.OriginalLength);

        Assert.True(reader.TryReadNext(out PcapRecord r2, out _).IsOk);
        Assert.Equal(PcapLinkType.Ethernet, r2.LinkType);
        Assert.Equal(Epoch1700000000.AddTicks(1_234_560), r2.Timestamp);
        Assert.Equal(14, r2.Data.Length);
        Assert.Equal(60, r2.OriginalLength);
        Assert.True(Ethernet.TryGetIpv6(r2.Data.Span, out int offset).IsOk);
        Assert.Equal(14, offset);

        Assert.True(reader.TryReadNext(out PcapRecord r3, out _).IsOk);
        Assert.Equal(PcapLinkType.Ethernet, r3.LinkType);
        Assert.Equal("aabbcc", Convert.ToHexStringLower(r3.Data.Span));
        Assert.Equal(3, r3.OriginalLength);

        Assert.True(reader.TryReadNext(out PcapRecord r4, out _).IsOk);
        Assert.True(reader.IsBigEndian);
        Assert.Equal(PcapLinkType.Raw, r4.LinkType);
        Assert.Equal(Epoch1700000000.AddSeconds(1), r4.Timestamp);
        Assert.Equal("deadbeef", Convert.ToHexStringLower(r4.Data.Span));

        Assert.True(reader.TryReadNext(out _, out bool end).IsOk);
        Assert.True(end);
    }

    [Fact]
    public void Read_PcapNgBinaryResolutionAndOffset_Converted()
    {
        // IDB with if_tsresol = 0x80 | 10 (2^-10 s) and if_tsoffset = 1700000000 s; EPB at 1536 units = 1.5 s.
        PcapReader reader = Open(
            "0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 1c000000" +
            "01000000 2c000000 e500 0000 00000000 09000100 8a000000 0e000800 00f1536500000000 00000000 2c000000" +
            "06000000 20000000 00000000 00000000 00060000 00000000 00000000 20000000");
        Assert.True(reader.TryReadNext(out PcapRecord record, out _).IsOk);
        Assert.Equal(Epoch1700000000.AddSeconds(1.5), record.Timestamp);
        Assert.Empty(record.Data.ToArray());
    }

    [Theory]
    [InlineData("", WireErrorKind.Truncated, 0)]
    [InlineData("d4c3b2", WireErrorKind.Truncated, 3)]
    [InlineData("00112233445566778899", WireErrorKind.Unsupported, 0)]
    [InlineData("d4c3b2a1 0200 0400 00000000", WireErrorKind.Truncated, 12)]
    [InlineData("d4c3b2a1 0300 0400 00000000 00000000 ffff0000 01000000", WireErrorKind.Unsupported, 4)]
    [InlineData("0a0d0d0a 1c000000 11223344", WireErrorKind.BadValue, 8)]
    [InlineData("0a0d0d0a 1c000000 4d3c2b1a 0200 0000 ffffffffffffffff 1c000000", WireErrorKind.Unsupported, 12)]
    [InlineData("0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 20000000", WireErrorKind.BadLength, 24)]
    [InlineData("0a0d0d0a 1a000000 4d3c2b1a 0100 0000 ffffffffffffffff 1a000000", WireErrorKind.BadLength, 4)]
    [InlineData("0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffff", WireErrorKind.Truncated, 20)]
    public void TryOpen_MalformedHeaders_TypedErrors(string hex, WireErrorKind kind, int offset)
    {
        using var stream = new MemoryStream(Convert.FromHexString(hex.Replace(" ", "", StringComparison.Ordinal)));
        WireError error = PcapReader.TryOpen(stream, out PcapReader? reader);
        Assert.Equal(kind, error.Kind);
        Assert.Equal(offset, error.Offset);
        Assert.Null(reader);
    }

    [Theory]
    // Classic record header cut short, then record data cut short.
    [InlineData("d4c3b2a1 0200 0400 00000000 00000000 ffff0000 01000000 00f15365 40e2", WireErrorKind.Truncated, 30)]
    [InlineData("d4c3b2a1 0200 0400 00000000 00000000 ffff0000 01000000 00f15365 40e20100 04000000 04000000 dead", WireErrorKind.Truncated, 42)]
    // Classic captured length above the 16 MiB limit.
    [InlineData("d4c3b2a1 0200 0400 00000000 00000000 ffff0000 01000000 00f15365 40e20100 00000010 04000000", WireErrorKind.BadLength, 32)]
    // pcapng EPB naming an interface that was never described.
    [InlineData("0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 1c000000 06000000 20000000 00000000 00000000 00000000 00000000 00000000 20000000", WireErrorKind.BadValue, 36)]
    // pcapng EPB whose captured length exceeds its block.
    [InlineData("0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 1c000000 01000000 14000000 0100 0000 00000400 14000000 06000000 20000000 00000000 00000000 00000000 01000000 01000000 20000000", WireErrorKind.BadLength, 68)]
    // pcapng IDB option overrunning its block.
    [InlineData("0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 1c000000 01000000 18000000 0100 0000 00000400 09000800 18000000", WireErrorKind.BadLength, 46)]
    // pcapng block cut short.
    [InlineData("0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 1c000000 01000000 14000000 0100", WireErrorKind.Truncated, 38)]
    public void TryReadNext_MalformedRecords_TypedErrors(string hex, WireErrorKind kind, int offset)
    {
        PcapReader reader = Open(hex);
        WireError error = reader.TryReadNext(out _, out bool end);
        Assert.False(end);
        Assert.Equal(kind, error.Kind);
        Assert.Equal(offset, error.Offset);
    }

    [Fact]
    public void Ethernet_UntaggedAndTaggedIpv6_PayloadOffsets()
    {
        Assert.True(Ethernet.TryGetIpv6(Convert.FromHexString("020000000001020000000002" + "86dd" + "60"), out int plain).IsOk);
        Assert.Equal(14, plain);
        Assert.True(Ethernet.TryGetIpv6(Convert.FromHexString("020000000001020000000002" + "8100" + "0064" + "86dd"), out int tagged).IsOk);
        Assert.Equal(18, tagged);
        Assert.True(Ethernet.TryGetIpv6(Convert.FromHexString("020000000001020000000002" + "88a8" + "0001" + "8100" + "0064" + "86dd"), out int qinq).IsOk);
        Assert.Equal(22, qinq);
    }

    [Theory]
    [InlineData("020000000001020000000002" + "0800", WireErrorKind.Unsupported, 12)]
    [InlineData("020000000001020000000002" + "8100" + "0064" + "0800", WireErrorKind.Unsupported, 16)]
    [InlineData("020000000001020000000002" + "8100" + "0064" + "8100" + "0001" + "8100" + "0002" + "86dd", WireErrorKind.Unsupported, 20)]
    [InlineData("0200000000010200000000", WireErrorKind.Truncated, 11)]
    [InlineData("020000000001020000000002" + "8100" + "00", WireErrorKind.Truncated, 15)]
    public void Ethernet_NotIpv6OrShort_TypedErrors(string hex, WireErrorKind kind, int offset)
    {
        WireError error = Ethernet.TryGetIpv6(Convert.FromHexString(hex), out _);
        Assert.Equal(kind, error.Kind);
        Assert.Equal(offset, error.Offset);
    }

    [Fact]
    public void Ethernet_WriteHeader_ExactBytes()
    {
        var frame = new byte[14];
        int written = Ethernet.WriteHeader(frame, Convert.FromHexString("020000000001"), Convert.FromHexString("020000000002"), Ethernet.EtherTypeIpv6);
        Assert.Equal(14, written);
        Assert.Equal("02000000000102000000000286dd", Convert.ToHexStringLower(frame));
    }

    private static PcapReader Open(string hex)
    {
        var stream = new MemoryStream(Convert.FromHexString(hex.Replace(" ", "", StringComparison.Ordinal)));
        WireError error = PcapReader.TryOpen(stream, out PcapReader? reader);
        Assert.Equal(WireError.None, error);
        return reader!;
    }
}
