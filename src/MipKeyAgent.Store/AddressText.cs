using System.Buffers.Text;

namespace MipKeyAgent.Store;

/// <summary>
/// An IPv6 address as the UTF-8 of its canonical text (RFC 5952, the text <see cref="Ipv6Address.ToString"/>
/// prints) without an <see cref="System.Net.IPAddress"/> or a string: the store's write path names the home and
/// care-of addresses in every row and every associated data. The forms the runtime prints with an embedded
/// IPv4 address (the first 64 bits zero, or an ISATAP identifier) are formatted by the runtime.
/// </summary>
internal static class AddressText
{
    /// <summary>Room for any address's text.</summary>
    public const int MaxUtf8Length = 64;

    /// <summary>Writes the text of <paramref name="address"/> to <paramref name="destination"/> (at least <see cref="MaxUtf8Length"/>) and returns its length.</summary>
    public static int Utf8(Ipv6Address address, Span<byte> destination)
    {
        Span<ushort> words = stackalloc ushort[8];
        UInt128 value = address.Value;
        for (int i = 0; i < 8; i++)
        {
            words[i] = (ushort)(value >> (112 - 16 * i));
        }
        if (HasEmbeddedIpv4(words))
        {
            return address.ToIPAddress().TryFormat(destination, out int formatted)
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
}
