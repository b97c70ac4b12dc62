using MipKeyAgent.Esp;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Protocol;

/// <summary>
/// Lays out the three ESP-protected datagram shapes of the protocol into a caller buffer:
/// <code>
/// BU:     IPv6(src=CoA, dst=HA) / DestOpt{HAO=HoA} / ESP(transport) / MH      (PROTOCOL.md section 2)
/// BA/BRR: IPv6(src=HA, dst=CoA) / RH2{HoA}         / ESP(transport) / MH      (RFC 3776 section 3)
/// Data:   IPv6(outer)           / ESP(tunnel, next header 41) / inner IPv6   (PROTOCOL.md section 7)
/// </code>
/// ESP is sealed in place after the headers, so no intermediate copy of the ciphertext is made.
/// </summary>
internal static class ProtectedDatagram
{
    /// <summary>Hop limit of datagrams the engines originate (the common default, RFC 8200 leaves it to the node).</summary>
    public const byte HopLimit = 64;

    /// <summary>The largest datagram an engine writes (an IPv6 payload is at most 65535 octets).</summary>
    public const int MaxLength = Ipv6Header.Length + ushort.MaxValue;

    /// <summary>
    /// The largest BU/BA/BRR datagram: IPv6 header, one 24-octet extension header (HAO or RH2),
    /// ESP around a Mobility Header of at most <see cref="MobilityHeader.MaximumLength"/> octets
    /// (header 8 + IV up to 16 + padding up to 15 + trailer 2 + ICV 16 is under 64). Control
    /// buffers of this size keep an engine small (a node process holds many), and a decrypted
    /// control payload that would not fit is not a Mobility Header anyway.
    /// </summary>
    public const int MaxControlLength = Ipv6Header.Length + 24 + MobilityHeader.MaximumLength + 64;

    /// <summary>Writes a BU datagram carrying the (already checksummed) Mobility Header <paramref name="mh"/>.</summary>
    public static WireError WriteFromMobileNode(Span<byte> destination, Ipv6Address careOf, Ipv6Address homeAgent, Ipv6Address homeAddress,
        SecurityAssociation sa, ReadOnlySpan<byte> mh, out int written)
    {
        int offset = Ipv6Header.Length;
        offset += ExtensionHeaders.WriteHomeAddressOption(destination[offset..], IpProtocol.Esp, homeAddress);
        return Finish(destination, offset, IpProtocol.DestinationOptions, careOf, homeAgent, sa, IpProtocol.Mobility, mh, out written);
    }

    /// <summary>Writes a BA or BRR datagram carrying the (already checksummed) Mobility Header <paramref name="mh"/>.</summary>
    public static WireError WriteFromHomeAgent(Span<byte> destination, Ipv6Address homeAgent, Ipv6Address careOf, Ipv6Address homeAddress,
        SecurityAssociation sa, ReadOnlySpan<byte> mh, out int written)
    {
        int offset = Ipv6Header.Length;
        offset += ExtensionHeaders.WriteRoutingType2(destination[offset..], IpProtocol.Esp, homeAddress);
        return Finish(destination, offset, IpProtocol.Routing, homeAgent, careOf, sa, IpProtocol.Mobility, mh, out written);
    }

    /// <summary>Writes a tunnel-mode ESP datagram around <paramref name="innerPacket"/> (an IPv6 packet).</summary>
    public static WireError WriteTunnel(Span<byte> destination, Ipv6Address source, Ipv6Address target, SecurityAssociation sa,
        ReadOnlySpan<byte> innerPacket, out int written) =>
        Finish(destination, Ipv6Header.Length, IpProtocol.Esp, source, target, sa, IpProtocol.Ipv6, innerPacket, out written);

    private static WireError Finish(Span<byte> destination, int espOffset, byte firstNextHeader, Ipv6Address source, Ipv6Address target,
        SecurityAssociation sa, byte espNextHeader, ReadOnlySpan<byte> payload, out int written)
    {
        written = 0;
        int sealedLength = sa.SealedLength(payload.Length);
        int payloadLength = espOffset - Ipv6Header.Length + sealedLength;
        if (payloadLength > ushort.MaxValue)
        {
            return new WireError(WireErrorKind.BufferTooSmall, 0, "datagram would exceed the IPv6 payload limit");
        }
        var error = sa.Seal(espNextHeader, payload, destination[espOffset..], out int espLength);
        if (!error.IsOk)
        {
            return error;
        }
        new Ipv6Header(0, 0, (ushort)payloadLength, firstNextHeader, HopLimit, source, target).WriteTo(destination);
        written = espOffset + espLength;
        return WireError.None;
    }
}
