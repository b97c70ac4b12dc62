namespace MipKeyAgent.Wire.Tests;

public sealed class PcapTests
{
    private static readonly DateTimeOffset Epoch1700000000 = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000);

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

        // Record header after the 24-octet file header: seconds, microseconds, captured, original.
        byte[] file = stream.ToArray();
        Assert.Equal(24 + 16 + 65_535, file.Length);
        Assert.Equal(65_535, BitConverter.ToInt32(file, 24 + 8));
        Assert.Equal(70_000, BitConverter.ToInt32(file, 24 + 12));
    }

    [Fact]
    public void Write_TimestampBefore1970_Throws()
    {
        using var writer = new PcapWriter(new MemoryStream(), PcapLinkType.Raw);
        Assert.Throws<ArgumentOutOfRangeException>(() => writer.Write(DateTimeOffset.UnixEpoch.AddTicks(-1), []));
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
}
