using System.Buffers.Text;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using MipKeyAgent.Wire.Internal;

namespace MipKeyAgent.Wire;

/// <summary>
/// A 128-bit IPv6 address held as a big-endian <see cref="UInt128"/> (RFC 4291 section 2), so it
/// can live in packet views and tables without a heap object.
/// </summary>
public readonly struct Ipv6Address : IEquatable<Ipv6Address>
{
    /// <summary>Octets on the wire.</summary>
    public const int Length = 16;

    public Ipv6Address(UInt128 value) => Value = value;

    /// <summary>The address as a number: the first wire octet is the most significant.</summary>
    public UInt128 Value { get; }

    /// <summary>The unspecified address <c>::</c>.</summary>
    public static Ipv6Address Unspecified => default;

    /// <summary>Reads 16 octets in network order.</summary>
    public static Ipv6Address Read(ReadOnlySpan<byte> src16)
    {
        if (src16.Length < Length)
        {
            ThrowHelper.ThrowArgument("An IPv6 address needs 16 octets.", nameof(src16));
        }

        return new Ipv6Address(BinaryPrimitives.ReadUInt128BigEndian(src16));
    }

    /// <summary>Writes 16 octets in network order.</summary>
    public void WriteTo(Span<byte> dst16)
    {
        if (dst16.Length < Length)
        {
            ThrowHelper.ThrowDestinationTooSmall(nameof(dst16));
        }

        BinaryPrimitives.WriteUInt128BigEndian(dst16, Value);
    }

    /// <summary>Parses IPv6 text (RFC 4291 section 2.2); throws <see cref="FormatException"/> for
    /// anything else, IPv4 text included.</summary>
    public static Ipv6Address Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (!TryParse(text, out var address))
        {
            ThrowHelper.ThrowFormat("Not an IPv6 address.");
        }

        return address;
    }

    /// <summary>Parses IPv6 text; false for anything else.</summary>
    public static bool TryParse(string? text, out Ipv6Address address)
    {
        if (text is not null && IPAddress.TryParse(text, out var ip) && ip.AddressFamily == AddressFamily.InterNetworkV6)
        {
            address = FromIPAddress(ip);
            return true;
        }

        address = default;
        return false;
    }

    /// <summary>Converts an IPv6 <see cref="IPAddress"/>; the scope id is dropped.</summary>
    public static Ipv6Address FromIPAddress(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            ThrowHelper.ThrowArgument("Not an IPv6 address.", nameof(address));
        }

        Span<byte> bytes = stackalloc byte[Length];
        address.TryWriteBytes(bytes, out _);
        return Read(bytes);
    }

    public IPAddress ToIPAddress()
    {
        Span<byte> bytes = stackalloc byte[Length];
        WriteTo(bytes);
        return new IPAddress(bytes);
    }

    /// <summary>Canonical text (RFC 5952), as <see cref="IPAddress"/> prints it.</summary>
    public override string ToString()
    {
        Span<byte> text = stackalloc byte[MaxUtf8Length];
        return System.Text.Encoding.ASCII.GetString(text[..FormatUtf8(text)]);
    }

    /// <summary>Room for any address's text (<see cref="FormatUtf8"/>).</summary>
    public const int MaxUtf8Length = 64;

    /// <summary>
    /// Writes the canonical text (RFC 5952, as <see cref="IPAddress"/> prints it) as UTF-8 to <paramref name="destination"/>
    /// (at least <see cref="MaxUtf8Length"/> octets) and returns its length, without a heap object: the store's write path
    /// names addresses in every row. The forms the runtime prints with an embedded IPv4 address (the first 64 bits zero, or an
    /// ISATAP identifier) are formatted by the runtime.
    /// </summary>
    public int FormatUtf8(Span<byte> destination)
    {
        Span<ushort> words = stackalloc ushort[8];
        UInt128 value = Value;
        for (int i = 0; i < 8; i++)
        {
            words[i] = (ushort)(value >> (112 - 16 * i));
        }
        if (HasEmbeddedIpv4(words))
        {
            return ToIPAddress().TryFormat(destination, out int formatted)
                ? formatted
                : throw new InvalidOperationException("an IPv6 address did not fit its buffer");
        }

        // The longest run of two or more zero words (the first of equal runs) becomes "::".
        int start = -1;
        int longest = 0;
        int run = 0;
        for (int i = 0; i < 8; i++)
        {
            run = words[i] == 0 ? run + 1 : 0;
            if (run > longest)
            {
                longest = run;
                start = i - run + 1;
            }
        }
        if (longest < 2)
        {
            start = -1;
        }

        int written = 0;
        for (int i = 0; i < 8; i++)
        {
            if (i == start)
            {
                destination[written++] = (byte)':';
                destination[written++] = (byte)':';
                i += longest - 1;
                continue;
            }
            if (i > 0 && i != start + longest)
            {
                destination[written++] = (byte)':';
            }
            Utf8Formatter.TryFormat(words[i], destination[written..], out int digits, new System.Buffers.StandardFormat('x'));
            written += digits;
        }
        return written;
    }

    // The runtime's rule for printing the last 32 bits as dotted decimal (::a.b.c.d, ::ffff:a.b.c.d, ::ffff:0:a.b.c.d, ISATAP).
    private static bool HasEmbeddedIpv4(ReadOnlySpan<ushort> words) =>
        (words[0] == 0 && words[1] == 0 && words[2] == 0 && words[3] == 0)
        || (words[4] == 0 && words[5] == 0x5EFE);

    public bool Equals(Ipv6Address other) => Value == other.Value;

    public override bool Equals(object? obj) => obj is Ipv6Address other && Equals(other);

    public override int GetHashCode() => Value.GetHashCode();

    public static bool operator ==(Ipv6Address left, Ipv6Address right) => left.Equals(right);

    public static bool operator !=(Ipv6Address left, Ipv6Address right) => !left.Equals(right);
}
