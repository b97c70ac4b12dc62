using System.Buffers.Binary;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Tools.Fuzzing;

/// <summary>
/// Mutates recorded datagrams the ways an attacker or a broken path would: bit flips, octet
/// overwrites with boundary values, truncation, extension (to oversized), IPv6/extension-header/
/// option length edits, insertion, splicing two packets, SPI swaps and sequence-number edits.
/// </summary>
internal sealed class DatagramMutator
{
    private static readonly byte[] Interesting = [0x00, 0x01, 0x02, 0x04, 0x07, 0x08, 0x10, 0x13, 0x3F, 0x40, 0x7F, 0x80, 0x87, 0xFE, 0xFF];

    // IPv6 payload length (4-5), next header (6), first extension header's next header and length
    // (40, 41), the first options' type and length octets (42-47), RH2 segments left (43).
    private static readonly int[] LengthOffsets = [4, 5, 6, 40, 41, 42, 43, 44, 45, 46, 47];

    private readonly Random _random;
    private readonly IReadOnlyList<byte[]> _corpus;
    private readonly int[] _espOffsets;

    public DatagramMutator(Random random, IReadOnlyList<byte[]> corpus)
    {
        _random = random;
        _corpus = corpus;
        _espOffsets = new int[corpus.Count];
        for (int i = 0; i < corpus.Count; i++)
        {
            _espOffsets[i] = Ipv6Datagram.TryParse(corpus[i], out var parsed).IsOk ? parsed.UpperOffset : Ipv6Header.Length;
        }
    }

    /// <summary>A mutant of corpus entry <paramref name="index"/> (possibly unchanged: a plain replay).</summary>
    public byte[] Mutate(int index)
    {
        byte[] packet = (byte[])_corpus[index].Clone();
        int esp = _espOffsets[index];
        int operations = _random.Next(10) switch
        {
            0 => 0,
            < 7 => 1,
            < 9 => 2,
            _ => 3,
        };
        for (int i = 0; i < operations; i++)
        {
            packet = Apply(packet, esp);
        }
        return packet;
    }

    private byte[] Apply(byte[] packet, int esp)
    {
        switch (_random.Next(11))
        {
            case 0:
                for (int flips = _random.Next(1, 5); flips > 0 && packet.Length > 0; flips--)
                {
                    packet[_random.Next(packet.Length)] ^= (byte)(1 << _random.Next(8));
                }
                return packet;
            case 1:
                for (int writes = _random.Next(1, 4); writes > 0 && packet.Length > 0; writes--)
                {
                    packet[_random.Next(packet.Length)] = Interesting[_random.Next(Interesting.Length)];
                }
                return packet;
            case 2:
                return packet[.._random.Next(packet.Length + 1)];
            case 3:
                return Extend(packet);
            case 4:
                return EditLength(packet);
            case 5:
                return Splice(packet);
            case 6:
                return ReplaceSpi(packet, esp);
            case 7:
                return ReplaceSequence(packet, esp);
            case 8:
                return Insert(packet);
            case 9:
                if (packet.Length >= Ipv6Header.Length)
                {
                    // Addresses (8-39): source, destination; the version nibble.
                    int offset = _random.Next(4) == 0 ? 0 : _random.Next(8, Ipv6Header.Length);
                    packet[offset] = (byte)_random.Next(256);
                }
                return packet;
            default:
                return RemoveRange(packet);
        }
    }

    /// <summary>Random octets appended; now and then past the largest IPv6 packet.</summary>
    private byte[] Extend(byte[] packet)
    {
        int extra = _random.Next(50) == 0 ? _random.Next(65_000, 70_000) - packet.Length : _random.Next(1, 65);
        var longer = new byte[packet.Length + Math.Max(1, extra)];
        packet.CopyTo(longer, 0);
        _random.NextBytes(longer.AsSpan(packet.Length));
        return longer;
    }

    /// <summary>A length, next-header or option octet changed.</summary>
    private byte[] EditLength(byte[] packet)
    {
        int offset = LengthOffsets[_random.Next(LengthOffsets.Length)];
        if (offset < packet.Length)
        {
            packet[offset] = _random.Next(3) switch
            {
                0 => (byte)(packet[offset] + _random.Next(-3, 4)),
                1 => Interesting[_random.Next(Interesting.Length)],
                _ => (byte)_random.Next(256),
            };
        }
        if (offset is 4 or 5 && packet.Length >= Ipv6Header.Length && _random.Next(2) == 0)
        {
            // A payload length that is consistent with the new packet length, so parsing goes deeper.
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(4), (ushort)(packet.Length - Ipv6Header.Length));
        }
        return packet;
    }

    /// <summary>The head of this packet joined to the tail of another corpus entry.</summary>
    private byte[] Splice(byte[] packet)
    {
        byte[] other = _corpus[_random.Next(_corpus.Count)];
        int cut = _random.Next(packet.Length + 1);
        int from = _random.Next(2) == 0 ? Math.Min(cut, other.Length) : _random.Next(other.Length + 1);
        return [.. packet.AsSpan(0, cut), .. other.AsSpan(from)];
    }

    private byte[] ReplaceSpi(byte[] packet, int esp)
    {
        if (esp + 4 <= packet.Length)
        {
            uint spi = BinaryPrimitives.ReadUInt32BigEndian(packet.AsSpan(esp));
            uint replacement = _random.Next(5) switch
            {
                0 => spi ^ 0x8000_0000,
                1 => 1000u + (uint)_random.Next(2),
                2 => (uint)_random.Next(),
                _ => SpiOf(_random.Next(_corpus.Count)),
            };
            BinaryPrimitives.WriteUInt32BigEndian(packet.AsSpan(esp), replacement);
        }
        return packet;
    }

    private byte[] ReplaceSequence(byte[] packet, int esp)
    {
        if (esp + 8 <= packet.Length)
        {
            uint sequence = BinaryPrimitives.ReadUInt32BigEndian(packet.AsSpan(esp + 4));
            uint replacement = _random.Next(4) switch
            {
                0 => sequence + 1,
                1 => sequence + (uint)_random.Next(1, 1_000_000),
                2 => uint.MaxValue,
                _ => 0,
            };
            BinaryPrimitives.WriteUInt32BigEndian(packet.AsSpan(esp + 4), replacement);
        }
        return packet;
    }

    private byte[] Insert(byte[] packet)
    {
        int at = _random.Next(packet.Length + 1);
        var inserted = new byte[_random.Next(1, 17)];
        _random.NextBytes(inserted);
        return [.. packet.AsSpan(0, at), .. inserted, .. packet.AsSpan(at)];
    }

    /// <summary>A range removed (a header or option that vanished).</summary>
    private byte[] RemoveRange(byte[] packet)
    {
        if (packet.Length > 1)
        {
            int at = _random.Next(packet.Length);
            int count = _random.Next(1, Math.Min(24, packet.Length - at) + 1);
            return [.. packet.AsSpan(0, at), .. packet.AsSpan(at + count)];
        }
        return packet;
    }

    private uint SpiOf(int index) =>
        _espOffsets[index] + 4 <= _corpus[index].Length ? BinaryPrimitives.ReadUInt32BigEndian(_corpus[index].AsSpan(_espOffsets[index])) : 0;
}
