using System.Buffers.Binary;
using MipKeyAgent.Cli.Replay;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Cli.Tests.Replay;

/// <summary>
/// A raw-IPv6 capture rewritten in the link types lab testers bring (each datagram behind the link
/// header that kind of capture puts before it), as classic pcap or as a pcapng with two interfaces.
/// </summary>
internal static class LinkTypeVariants
{
    private static readonly byte[] MacA = Convert.FromHexString("020000000001");
    private static readonly byte[] MacB = Convert.FromHexString("020000000002");

    /// <summary>The link header for <paramref name="linkType"/> (Ethernet: with one 802.1Q tag when <paramref name="vlan"/>).</summary>
    public static byte[] Frame(PcapLinkType linkType, byte[] datagram, int index, bool vlan = false)
    {
        byte[] header = linkType switch
        {
            PcapLinkType.Ipv6 or PcapLinkType.Raw => [],
            PcapLinkType.Ethernet when vlan => [.. MacA, .. MacB, 0x81, 0x00, 0x00, 0x64, 0x86, 0xDD],
            PcapLinkType.Ethernet => [.. MacA, .. MacB, 0x86, 0xDD],
            // packet type (0 to us, 4 outgoing), ARPHRD_ETHER, address length, address padded to 8, protocol.
            PcapLinkType.LinuxSll => [0x00, (byte)(index % 2 == 0 ? 4 : 0), 0x00, 0x01, 0x00, 0x06, .. MacA, 0x00, 0x00, 0x86, 0xDD],
            // protocol, reserved, ifindex, ARPHRD_ETHER, packet type, address length, address padded to 8.
            PcapLinkType.LinuxSll2 => [0x86, 0xDD, 0x00, 0x00, 0x00, 0x00, 0x00, (byte)(2 + (index % 2)), 0x00, 0x01, (byte)(index % 2 == 0 ? 4 : 0), 0x06, .. MacB, 0x00, 0x00],
            // AF_INET6 = 10 in a little-endian host's order (a Linux loopback capture).
            PcapLinkType.Null => [0x0A, 0x00, 0x00, 0x00],
            _ => throw new ArgumentOutOfRangeException(nameof(linkType)),
        };
        return [.. header, .. datagram];
    }

    public static void WriteClassic(string path, IReadOnlyList<CapturedDatagram> records, PcapLinkType linkType, bool vlan = false)
    {
        using var writer = new PcapWriter(File.Create(path), linkType);
        for (int i = 0; i < records.Count; i++)
        {
            writer.Write(records[i].Timestamp, Frame(linkType, records[i].Datagram, i, vlan));
        }
    }

    /// <summary>
    /// A little-endian pcapng (draft-ietf-opsawg-pcapng) with two interfaces of <paramref name="linkType"/>,
    /// the first in microseconds, the second with if_tsresol 9 (nanoseconds); records alternate between them.
    /// </summary>
    public static void WritePcapNgTwoInterfaces(string path, IReadOnlyList<CapturedDatagram> records, PcapLinkType linkType)
    {
        using var file = File.Create(path);
        Block(file, 0x0A0D0D0A, [0x4D, 0x3C, 0x2B, 0x1A, 0x01, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        Block(file, 1, InterfaceDescription(linkType, tsresol: null));
        Block(file, 1, InterfaceDescription(linkType, tsresol: 9));
        for (int i = 0; i < records.Count; i++)
        {
            uint interfaceId = (uint)(i % 2);
            long ticks = records[i].Timestamp.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;
            ulong units = interfaceId == 0 ? (ulong)(ticks / 10) : (ulong)ticks * 100;
            byte[] frame = Frame(linkType, records[i].Datagram, i);
            var body = new byte[20 + ((frame.Length + 3) & ~3)];
            BinaryPrimitives.WriteUInt32LittleEndian(body, interfaceId);
            BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(4), (uint)(units >> 32));
            BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(8), (uint)units);
            BinaryPrimitives.WriteInt32LittleEndian(body.AsSpan(12), frame.Length);
            BinaryPrimitives.WriteInt32LittleEndian(body.AsSpan(16), frame.Length);
            frame.CopyTo(body, 20);
            Block(file, 6, body);
        }
    }

    private static byte[] InterfaceDescription(PcapLinkType linkType, byte? tsresol)
    {
        var body = new List<byte>();
        body.AddRange(BitConverter.GetBytes((ushort)linkType));
        body.AddRange([0, 0]);
        body.AddRange(BitConverter.GetBytes(262_144));
        if (tsresol is { } resolution)
        {
            body.AddRange([9, 0, 1, 0, resolution, 0, 0, 0, 0, 0, 0, 0]); // if_tsresol, opt_endofopt
        }

        return [.. body];
    }

    private static void Block(Stream file, uint type, byte[] body)
    {
        int total = 12 + body.Length;
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(word, type);
        file.Write(word);
        BinaryPrimitives.WriteInt32LittleEndian(word, total);
        file.Write(word);
        file.Write(body);
        file.Write(word);
    }
}
