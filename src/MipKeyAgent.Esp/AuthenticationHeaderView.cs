using MipKeyAgent.Wire;

namespace MipKeyAgent.Esp;

/// <summary>
/// Rewrites a copy of an IPv6 datagram into the form AH's ICV covers (RFC 4302 section
/// 3.3.3.1.2, RFC 6275 sections 6.3, 6.4 and 9.3.1): the datagram as the receiver's IPsec sees
/// it after Home Address option and type 2 routing header processing, mutable fields zeroed.
/// </summary>
internal static class AuthenticationHeaderView
{
    private const int SourceOffset = 8;
    private const int DestinationOffset = 24;
    private const int HopLimitOffset = 7;
    private const int NextHeaderOffset = 6;
    private const byte HomeAddressOptionType = 201;
    private const byte ChangesEnRoute = 0x20;
    private const int RoutingTypeOffset = 2;
    private const int SegmentsLeftOffset = 3;
    private const int RoutingType2AddressOffset = 8;

    /// <summary>
    /// Normalizes <paramref name="view"/> (a copy) in place up to the AH header at <paramref name="ahOffset"/>.
    /// Extension headers that do not fit are left as they are: the ICV then fails, as it must.
    /// </summary>
    public static void Normalize(Span<byte> view, int ahOffset)
    {
        // RFC 4302 3.3.3.1.2.1: Traffic Class and Flow Label (the 28 bits after Version) and Hop Limit are mutable.
        view[0] &= 0xF0;
        view[1] = 0;
        view[2] = 0;
        view[3] = 0;
        view[HopLimitOffset] = 0;

        byte nextHeader = view[NextHeaderOffset];
        int offset = Ipv6Header.Length;
        while (offset < ahOffset && offset + 2 <= view.Length
            && nextHeader is IpProtocol.HopByHop or IpProtocol.DestinationOptions or IpProtocol.Routing)
        {
            int length = (view[offset + 1] + 1) * 8;
            if (offset + length > ahOffset)
            {
                return;
            }
            var header = view.Slice(offset, length);
            if (nextHeader == IpProtocol.Routing)
            {
                NormalizeRoutingType2(view, header);
            }
            else
            {
                NormalizeOptions(view, header, nextHeader == IpProtocol.DestinationOptions);
            }
            nextHeader = header[0];
            offset += length;
        }
    }

    // RFC 6275 section 6.4 / RFC 4302 3.3.3.1.2.2: the type 2 routing header as at its final
    // destination: the home address is the IPv6 destination, the care-of address in the header.
    private static void NormalizeRoutingType2(Span<byte> view, Span<byte> header)
    {
        if (header.Length != 24 || header[RoutingTypeOffset] != 2 || header[SegmentsLeftOffset] == 0)
        {
            return;
        }
        Swap(view.Slice(DestinationOffset, Ipv6Address.Length), header.Slice(RoutingType2AddressOffset, Ipv6Address.Length));
        header[SegmentsLeftOffset] = 0;
    }

    // RFC 8200 section 4.2: option data whose type has the change-en-route bit is zeroed. RFC 6275
    // section 6.3: the Home Address option (type 201, no such bit) is covered with the care-of
    // address in it and the home address as the IPv6 source.
    private static void NormalizeOptions(Span<byte> view, Span<byte> header, bool destinationOptions)
    {
        int position = 2;
        while (position < header.Length)
        {
            byte type = header[position];
            if (type == 0)
            {
                position++;
                continue;
            }
            if (position + 2 > header.Length || position + 2 + header[position + 1] > header.Length)
            {
                return;
            }
            int dataLength = header[position + 1];
            var data = header.Slice(position + 2, dataLength);
            if (destinationOptions && type == HomeAddressOptionType && dataLength == Ipv6Address.Length)
            {
                Swap(view.Slice(SourceOffset, Ipv6Address.Length), data);
            }
            else if ((type & ChangesEnRoute) != 0)
            {
                data.Clear();
            }
            position += 2 + dataLength;
        }
    }

    private static void Swap(Span<byte> a, Span<byte> b)
    {
        Span<byte> held = stackalloc byte[Ipv6Address.Length];
        a.CopyTo(held);
        b.CopyTo(a);
        held.CopyTo(b);
    }
}
