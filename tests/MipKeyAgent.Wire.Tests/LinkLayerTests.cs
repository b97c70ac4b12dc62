namespace MipKeyAgent.Wire.Tests;

public sealed class LinkLayerTests
{
    private const string Datagram = "6000000000003b40";

    [Theory]
    [InlineData(PcapLinkType.Ipv6, "", 0)]
    [InlineData(PcapLinkType.Raw, "", 0)]
    [InlineData(PcapLinkType.Ethernet, "020000000001020000000002 86dd", 14)]
    [InlineData(PcapLinkType.Ethernet, "020000000001020000000002 8100 0064 86dd", 18)]
    // SLL: packet type 4 (outgoing), ARPHRD_ETHER, address length 6, address padded to 8, protocol.
    [InlineData(PcapLinkType.LinuxSll, "0004 0001 0006 020000000001 0000 86dd", 16)]
    // SLL2: protocol, reserved, ifindex 3, ARPHRD_ETHER, packet type 0, address length 6, address.
    [InlineData(PcapLinkType.LinuxSll2, "86dd 0000 00000003 0001 00 06 020000000001 0000", 20)]
    // NULL: AF_INET6 as Linux (10, little-endian host), FreeBSD (28), macOS (30, big-endian host), OpenBSD (24).
    [InlineData(PcapLinkType.Null, "0a000000", 4)]
    [InlineData(PcapLinkType.Null, "1c000000", 4)]
    [InlineData(PcapLinkType.Null, "0000001e", 4)]
    [InlineData(PcapLinkType.Null, "18000000", 4)]
    public void TryGetIpv6_EveryLinkType_OffsetOfTheDatagram(PcapLinkType linkType, string header, int offset)
    {
        byte[] frame = Convert.FromHexString((header + Datagram).Replace(" ", "", StringComparison.Ordinal));
        Assert.Equal(WireError.None, LinkLayer.TryGetIpv6(linkType, frame, out int found));
        Assert.Equal(offset, found);
    }

    [Theory]
    [InlineData(PcapLinkType.Ipv6, "", WireErrorKind.Truncated, 0)]
    [InlineData(PcapLinkType.Raw, "4500001c", WireErrorKind.Unsupported, 0)]
    [InlineData(PcapLinkType.Ethernet, "020000000001020000000002 0800 45", WireErrorKind.Unsupported, 12)]
    [InlineData(PcapLinkType.Ethernet, "020000000001020000000002 86dd 45", WireErrorKind.Unsupported, 14)]
    [InlineData(PcapLinkType.LinuxSll, "0004 0001 0006 020000000001 0000 0800 45", WireErrorKind.Unsupported, 14)]
    [InlineData(PcapLinkType.LinuxSll, "0004 0001 0006 0200", WireErrorKind.Truncated, 8)]
    [InlineData(PcapLinkType.LinuxSll, "0004 0001 0006 020000000001 0000 86dd", WireErrorKind.Truncated, 16)]
    [InlineData(PcapLinkType.LinuxSll2, "0800 0000 00000003 0001 00 06 020000000001 0000 45", WireErrorKind.Unsupported, 0)]
    [InlineData(PcapLinkType.LinuxSll2, "86dd 0000", WireErrorKind.Truncated, 4)]
    [InlineData(PcapLinkType.Null, "02000000 45", WireErrorKind.Unsupported, 0)]
    [InlineData(PcapLinkType.Null, "0a00", WireErrorKind.Truncated, 2)]
    [InlineData((PcapLinkType)105, "60", WireErrorKind.Unsupported, 0)]
    public void TryGetIpv6_NotIpv6OrShort_TypedErrors(PcapLinkType linkType, string hex, WireErrorKind kind, int offset)
    {
        WireError error = LinkLayer.TryGetIpv6(linkType, Convert.FromHexString(hex.Replace(" ", "", StringComparison.Ordinal)), out _);
        Assert.Equal(kind, error.Kind);
        Assert.Equal(offset, error.Offset);
    }
}
