using System.Buffers.Binary;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Hosting;

/// <summary>
/// ICMPv6 Echo Request / Reply inner packets (RFC 4443 section 4.1/4.2) for the agents' test
/// traffic: the mobile node pings the home agent through the tunnel, the home agent answers.
/// <code>
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |     Type      |     Code      |          Checksum             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |           Identifier          |        Sequence Number        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |     Data ...
/// </code>
/// </summary>
internal static class EchoPacket
{
    public const int IdentifierOffset = 4;
    public const int SequenceOffset = 6;
    public const int EchoHeaderLength = 8;
    private const byte HopLimit = 64;

    /// <summary>Writes an IPv6 packet carrying an echo message; returns its length.</summary>
    public static int Write(Span<byte> destination, Icmpv6Type type, Ipv6Address source, Ipv6Address target, ushort identifier, ushort sequence,
        ReadOnlySpan<byte> data)
    {
        int icmpLength = EchoHeaderLength + data.Length;
        new Ipv6Header(0, 0, (ushort)icmpLength, IpProtocol.Icmpv6, HopLimit, source, target).WriteTo(destination);
        var icmp = destination.Slice(Ipv6Header.Length, icmpLength);
        icmp.Clear();
        icmp[0] = (byte)type;
        BinaryPrimitives.WriteUInt16BigEndian(icmp[IdentifierOffset..], identifier);
        BinaryPrimitives.WriteUInt16BigEndian(icmp[SequenceOffset..], sequence);
        data.CopyTo(icmp[EchoHeaderLength..]);
        Icmpv6.WriteChecksum(icmp, source, target);
        return Ipv6Header.Length + icmpLength;
    }

    /// <summary>True when <paramref name="packet"/> is an echo message of <paramref name="type"/> with a valid checksum.</summary>
    public static bool TryRead(ReadOnlySpan<byte> packet, Icmpv6Type type, out Ipv6Header header, out ushort identifier, out ushort sequence,
        out ReadOnlySpan<byte> data)
    {
        identifier = 0;
        sequence = 0;
        data = default;
        if (!Icmpv6.TryGetMessage(packet, out var parsed, out var actual).IsOk || actual != type)
        {
            header = default;
            return false;
        }
        header = parsed.Header;
        var icmp = parsed.GetUpper(packet);
        if (icmp.Length < EchoHeaderLength || icmp[1] != 0)
        {
            return false;
        }
        identifier = BinaryPrimitives.ReadUInt16BigEndian(icmp[IdentifierOffset..]);
        sequence = BinaryPrimitives.ReadUInt16BigEndian(icmp[SequenceOffset..]);
        data = icmp[EchoHeaderLength..];
        return true;
    }
}
