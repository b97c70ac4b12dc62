namespace MipKeyAgent.Protocol;

/// <summary>How the key messages' BU and BA travel between the two sides.</summary>
public enum Carriage : byte
{
    /// <summary>
    /// Mobile IPv6 (PROTOCOL.md section 2): the BU carries a Home Address option naming the node, and the
    /// care-of address is the Alternate Care-of Address option or the IPv6 source.
    /// </summary>
    MobileIpv6 = 0,

    /// <summary>
    /// Client/server over UDP (PROTOCOL.md section 11, <see cref="MipKeyAgent.Wire.UdpEncapsulation"/>): no Home
    /// Address option; the SPI names the node, whose provisioned home address is its identity and the Mobility
    /// Header checksum's source; the care-of address is the UDP source the BU came from (the datagram's IPv6
    /// source, an endpoint name), whatever the BU's Alternate Care-of Address option says.
    /// </summary>
    Udp = 1,
}
