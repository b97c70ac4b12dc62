using System.Buffers.Binary;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Tools.Fuzzing;

/// <summary>
/// Mutates the plaintext of a decrypted Mobility Header (the ESP payload of a BU, BA or BRR) with
/// knowledge of its layout, for the fuzzer's re-seal class: bit flips, Header Len, MH type,
/// truncation, the BU/BA sequence number, flags and lifetime, and on the option list: removal,
/// duplication, reordering, insertion (well-formed MIPKEY options and options of other messages),
/// option length edits, and field edits inside the MIPKEY sub-options (vendor ID, sub-type,
/// version, init epoch, generation numbers, SPIs, suite, flags, key lifetime, wrapped key,
/// status code). Most mutants get a consistent Header Len, padding and checksum so that they pass
/// the Mobility Header parser and reach the option parsers and the decision table; some do not.
/// </summary>
internal sealed class MobilityMutator
{
    private const byte VendorSpecific = 19;
    private const byte AlternateCareOf = 3;
    private const int VendorHeader = 6; // vendor ID (4), sub-type, version after type and length.

    private static readonly byte[] Interesting = [0x00, 0x01, 0x02, 0x04, 0x07, 0x08, 0x10, 0x13, 0x3F, 0x40, 0x7F, 0x80, 0x87, 0xFE, 0xFF];
    private static readonly uint[] InterestingWords = [0, 1, 2, 255, 256, 257, 0x7FFF_FFFF, 0x8000_0000, 0x8000_0100, 0xFFFF_FFFE, uint.MaxValue];

    // Accepted, accepted with prefix discovery, reason unspecified, prohibited, out of window, not HA, other.
    private static readonly byte[] BaStatuses = [0, 1, 128, 129, 135, 136, 255];

    private readonly Random _random;
    private readonly List<byte[]> _optionPool = [];
    private readonly uint[] _spis;

    /// <param name="random">The run's random source.</param>
    /// <param name="plaintexts">Every decrypted Mobility Header of the recorded exchange (option donors).</param>
    /// <param name="spis">SPIs known in the session (plausible values for SPI fields).</param>
    public MobilityMutator(Random random, IEnumerable<byte[]> plaintexts, IEnumerable<uint> spis)
    {
        _random = random;
        _spis = [.. spis];
        foreach (var mh in plaintexts)
        {
            if (mh.Length > 2)
            {
                _optionPool.AddRange(Split(mh).Options.Where(o => o[0] > 1));
            }
        }
        // Well-formed MIPKEY requests and statuses the recorded exchange may not contain.
        _optionPool.Add(Vendor(MipKeySubType.KeyInitRequest, [.. Word64(1), .. new byte[16]]));
        _optionPool.Add(Vendor(MipKeySubType.KeyInitRequest, [.. Word64(ulong.MaxValue), .. new byte[16]]));
        for (uint g = 0; g < 5; g++)
        {
            _optionPool.Add(Vendor(MipKeySubType.KeyUpdateRequest, Word32(g)));
            _optionPool.Add(Vendor(MipKeySubType.KeyResendRequest, Word32(g)));
        }
        _optionPool.Add(Vendor(MipKeySubType.KeyStatus, [0, 0, 0, 0]));
        _optionPool.Add(Vendor(MipKeySubType.KeyStatus, [1, 0, 0, 5]));
        _optionPool.Add(Vendor(MipKeySubType.KeyStatus, [3, 0, 0, 0]));
        _optionPool.Add([AlternateCareOf, 16, .. new byte[16]]);
    }

    /// <summary>A mutant of <paramref name="mh"/> (one to three operations); the checksum is the caller's.</summary>
    public byte[] Mutate(byte[] mh)
    {
        var (fixedPart, options) = Split(mh);
        byte[]? raw = null;
        int operations = _random.Next(4) == 0 ? _random.Next(2, 4) : 1;
        for (int i = 0; i < operations; i++)
        {
            int operation = _random.Next(16);
            switch (operation)
            {
                case <= 2:
                    raw = MutateRaw(operation, Flatten(fixedPart, options, raw));
                    break;
                case 3:
                    MutateFixedOctet(fixedPart);
                    break;
                case 4:
                    MutateSequence(fixedPart);
                    break;
                case 5:
                    MutateLifetimeOrFlags(fixedPart);
                    break;
                case <= 11:
                    MutateOptionList(operation, options);
                    break;
                default:
                    MutateMipKeyField(options);
                    break;
            }
        }
        return raw ?? Assemble(fixedPart, options, fix: _random.Next(8) != 0);
    }

    /// <summary>Edits of the flattened message: bit flips (0), truncation (1), the Header Len octet (2).</summary>
    private byte[] MutateRaw(int operation, byte[] raw)
    {
        switch (operation)
        {
            case 0:
                for (int flips = _random.Next(1, 4); flips > 0 && raw.Length > 0; flips--)
                {
                    raw[_random.Next(raw.Length)] ^= (byte)(1 << _random.Next(8));
                }
                return raw;
            case 1:
                return raw[.._random.Next(raw.Length + 1)];
            default:
                if (raw.Length > 1)
                {
                    raw[1] = _random.Next(2) == 0 ? (byte)(raw[1] + _random.Next(-2, 3)) : Interesting[_random.Next(Interesting.Length)];
                }
                return raw;
        }
    }

    /// <summary>MH type, payload proto or reserved octet.</summary>
    private void MutateFixedOctet(byte[] fixedPart)
    {
        if (fixedPart.Length > 3)
        {
            int at = _random.Next(3) switch { 0 => 0, 1 => 2, _ => 3 };
            fixedPart[at] = _random.Next(2) == 0 ? Interesting[_random.Next(Interesting.Length)] : (byte)_random.Next(8);
        }
    }

    /// <summary>BU/BA sequence number (BU: 6-7, BA: 8-9).</summary>
    private void MutateSequence(byte[] fixedPart)
    {
        if (fixedPart.Length >= 12)
        {
            int at = fixedPart[2] == 6 ? 8 : 6;
            ushort sequence = BinaryPrimitives.ReadUInt16BigEndian(fixedPart.AsSpan(at));
            ushort changed = _random.Next(5) switch
            {
                0 => (ushort)(sequence + 1),
                1 => (ushort)(sequence - 1),
                2 => (ushort)(sequence + 32768),
                3 => (ushort)(sequence + _random.Next(2, 40000)),
                _ => (ushort)_random.Next(65536),
            };
            BinaryPrimitives.WriteUInt16BigEndian(fixedPart.AsSpan(at), changed);
        }
    }

    /// <summary>Lifetime (10-11) or flags (BU 8-9, BA 6-7); a BA status (6) of interest.</summary>
    private void MutateLifetimeOrFlags(byte[] fixedPart)
    {
        if (fixedPart.Length >= 12 && fixedPart[2] == 6 && _random.Next(3) == 0)
        {
            fixedPart[6] = BaStatuses[_random.Next(BaStatuses.Length)];
        }
        else if (fixedPart.Length >= 12)
        {
            int at = _random.Next(2) == 0 ? 10 : fixedPart[2] == 6 ? 6 : 8;
            ushort value = _random.Next(4) switch { 0 => 0, 1 => 1, 2 => ushort.MaxValue, _ => (ushort)_random.Next(65536) };
            BinaryPrimitives.WriteUInt16BigEndian(fixedPart.AsSpan(at), value);
        }
    }

    /// <summary>Options removed (6), duplicated (7), swapped (8), taken from the pool (9), made up (10), cut or mis-sized (11).</summary>
    private void MutateOptionList(int operation, List<byte[]> options)
    {
        switch (operation)
        {
            case 6:
                if (options.Count > 0)
                {
                    options.RemoveAt(_random.Next(options.Count));
                }
                break;
            case 7:
                if (options.Count > 0)
                {
                    var copy = (byte[])options[_random.Next(options.Count)].Clone();
                    options.Insert(_random.Next(options.Count + 1), copy);
                }
                break;
            case 8:
                if (options.Count > 1)
                {
                    int a = _random.Next(options.Count);
                    int b = _random.Next(options.Count);
                    (options[a], options[b]) = (options[b], options[a]);
                }
                break;
            case 9:
                options.Insert(_random.Next(options.Count + 1), (byte[])_optionPool[_random.Next(_optionPool.Count)].Clone());
                break;
            case 10:
                {
                    // An option of random type and content.
                    var option = new byte[2 + _random.Next(0, 24)];
                    _random.NextBytes(option);
                    option[0] = _random.Next(3) == 0 ? VendorSpecific : (byte)_random.Next(2, 40);
                    option[1] = (byte)(option.Length - 2);
                    options.Insert(_random.Next(options.Count + 1), option);
                    break;
                }
            default:
                MutateOptionLength(options);
                break;
        }
    }

    /// <summary>Option length octet, or option data cut short.</summary>
    private void MutateOptionLength(List<byte[]> options)
    {
        if (options.Count > 0)
        {
            int index = _random.Next(options.Count);
            var option = options[index];
            if (option.Length > 1 && _random.Next(2) == 0)
            {
                option[1] = _random.Next(2) == 0 ? (byte)(option[1] + _random.Next(-3, 4)) : Interesting[_random.Next(Interesting.Length)];
            }
            else if (option.Length > 1)
            {
                int cut = _random.Next(1, option.Length);
                options[index] = [.. option.AsSpan(0, cut)];
                if (options[index].Length > 1)
                {
                    options[index][1] = (byte)(cut - 2);
                }
            }
        }
    }

    /// <summary>Field edits inside a MIPKEY option (the most likely place for decision-table bugs).</summary>
    private void MutateMipKeyField(List<byte[]> options)
    {
        var mipkey = options.Where(o => o.Length >= 2 + VendorHeader && o[0] == VendorSpecific).ToList();
        if (mipkey.Count == 0)
        {
            options.Insert(_random.Next(options.Count + 1), (byte[])_optionPool[_random.Next(_optionPool.Count)].Clone());
            return;
        }
        var option = mipkey[_random.Next(mipkey.Count)];
        var data = option.AsSpan(2 + VendorHeader);
        switch (_random.Next(8))
        {
            case 0:
                // Vendor ID (another enterprise number: the option must be skipped).
                BinaryPrimitives.WriteUInt32BigEndian(option.AsSpan(2), _random.Next(2) == 0 ? 0 : (uint)_random.Next());
                return;
            case 1:
                option[6] = (byte)_random.Next(0, 8); // sub-type
                return;
            case 2:
                option[7] = Interesting[_random.Next(Interesting.Length)]; // version
                return;
            default:
                break;
        }
        if (data.Length < 4)
        {
            return;
        }
        switch ((MipKeySubType)option[6])
        {
            case MipKeySubType.KeyInitRequest when data.Length >= 8:
                {
                    ulong epoch = BinaryPrimitives.ReadUInt64BigEndian(data);
                    ulong changed = _random.Next(4) switch { 0 => epoch + 1, 1 => epoch - 1, 2 => 0, _ => ulong.MaxValue };
                    BinaryPrimitives.WriteUInt64BigEndian(data, changed);
                    return;
                }
            case MipKeySubType.KeyDistribution when data.Length >= 20:
                MutateKeyDistribution(data);
                return;
            case MipKeySubType.KeyStatus:
                data[_random.Next(2) == 0 ? 0 : 3] = Interesting[_random.Next(Interesting.Length)];
                return;
            default:
                // KEY-UPDATE-REQ / KEY-RESEND-REQ: the generation the MN holds.
                BinaryPrimitives.WriteUInt32BigEndian(data, Word(BinaryPrimitives.ReadUInt32BigEndian(data)));
                return;
        }
    }

    /// <summary>Generation (0), suite (4), flags (5), reserved (6), SPIs (8, 12), lifetime (16), key (20...) of a KEY-DIST.</summary>
    private void MutateKeyDistribution(Span<byte> data)
    {
        int field = _random.Next(7);
        switch (field)
        {
            case 0:
                BinaryPrimitives.WriteUInt32BigEndian(data, Word(BinaryPrimitives.ReadUInt32BigEndian(data)));
                return;
            case 1:
                data[4] = (byte)_random.Next(0, 4);
                return;
            case 2:
                data[5] = Interesting[_random.Next(Interesting.Length)];
                return;
            case 3:
            case 4:
                {
                    int at = field == 3 ? 8 : 12;
                    uint spi = _random.Next(3) == 0
                        ? BinaryPrimitives.ReadUInt32BigEndian(data[(field == 3 ? 12 : 8)..]) // both SPIs equal
                        : _random.Next(2) == 0 && _spis.Length > 0 ? _spis[_random.Next(_spis.Length)] : Word(BinaryPrimitives.ReadUInt32BigEndian(data[at..]));
                    BinaryPrimitives.WriteUInt32BigEndian(data[at..], spi);
                    return;
                }
            case 5:
                BinaryPrimitives.WriteUInt32BigEndian(data[16..], Word(BinaryPrimitives.ReadUInt32BigEndian(data[16..])));
                return;
            default:
                if (data.Length > 20)
                {
                    data[20 + _random.Next(data.Length - 20)] ^= (byte)(1 << _random.Next(8));
                }
                return;
        }
    }

    private uint Word(uint value) => _random.Next(4) switch
    {
        0 => value + 1,
        1 => value - 1,
        2 => InterestingWords[_random.Next(InterestingWords.Length)],
        _ => (uint)_random.Next(0, 8),
    };

    /// <summary>The fixed part (up to the options) and the options, each with its type and length octets.</summary>
    internal static (byte[] Fixed, List<byte[]> Options) Split(byte[] mh)
    {
        int start = mh.Length > 2 ? Math.Min(mh.Length, mh[2] == 0 ? 8 : 12) : mh.Length;
        var options = new List<byte[]>();
        int at = start;
        while (at < mh.Length)
        {
            int length = mh[at] == 0 ? 1 : at + 1 < mh.Length ? 2 + mh[at + 1] : mh.Length - at;
            length = Math.Min(length, mh.Length - at);
            options.Add(mh[at..(at + length)]);
            at += length;
        }
        return (mh[..start], options);
    }

    private static byte[] Flatten(byte[] fixedPart, List<byte[]> options, byte[]? raw) =>
        raw ?? Assemble(fixedPart, options, fix: true);

    /// <summary>
    /// Joins the parts. With <paramref name="fix"/>: drops the old padding, aligns MIPKEY options at
    /// 4n+2 and Alternate CoA at 8n+6 (RFC 6275 section 6.2, RFC 5094), pads to a multiple of 8 and sets Header Len.
    /// </summary>
    private static byte[] Assemble(byte[] fixedPart, List<byte[]> options, bool fix)
    {
        var result = new List<byte>(fixedPart);
        foreach (var option in options)
        {
            if (fix && option.Length > 0 && option[0] is 0 or 1)
            {
                continue;
            }
            if (fix && option.Length > 0)
            {
                int modulus = option[0] == AlternateCareOf ? 8 : option[0] == VendorSpecific ? 4 : 1;
                int offset = option[0] == AlternateCareOf ? 6 : option[0] == VendorSpecific ? 2 : 0;
                Pad(result, (offset - (result.Count % modulus) + modulus) % modulus);
            }
            result.AddRange(option);
        }
        if (fix && result.Count >= 8)
        {
            Pad(result, (8 - (result.Count % 8)) % 8);
            if (result.Count <= MobilityHeader.MaximumLength)
            {
                result[1] = (byte)((result.Count / 8) - 1);
            }
        }
        return [.. result];
    }

    private static void Pad(List<byte> mh, int count)
    {
        if (count == 1)
        {
            mh.Add(0);
        }
        else if (count > 1)
        {
            mh.Add(1);
            mh.Add((byte)(count - 2));
            mh.AddRange(new byte[count - 2]);
        }
    }

    private static byte[] Vendor(MipKeySubType subType, byte[] data)
    {
        var option = new byte[2 + VendorHeader + data.Length];
        option[0] = VendorSpecific;
        option[1] = (byte)(option.Length - 2);
        BinaryPrimitives.WriteUInt32BigEndian(option.AsSpan(2), MipKey.DefaultVendorId);
        option[6] = (byte)subType;
        option[7] = MipKey.Version;
        data.CopyTo(option, 8);
        return option;
    }

    private static byte[] Word32(uint value)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        return bytes;
    }

    private static byte[] Word64(ulong value)
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, value);
        return bytes;
    }
}
