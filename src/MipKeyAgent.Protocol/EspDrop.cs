using MipKeyAgent.Esp;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Protocol;

/// <summary>Maps ESP open failures to drop reasons (PROTOCOL.md section 2: dropped, counted, never answered).</summary>
internal static class EspDrop
{
    public static DropReason From(MipKeyAgent.Wire.WireError error) => error.Kind switch
    {
        MipKeyAgent.Wire.WireErrorKind.Replay => DropReason.Replay,
        MipKeyAgent.Wire.WireErrorKind.AuthenticationFailed or MipKeyAgent.Wire.WireErrorKind.BadPadding => DropReason.AuthenticationFailed,
        MipKeyAgent.Wire.WireErrorKind.UnknownSpi => DropReason.UnknownSpi,
        _ => DropReason.Malformed,
    };

    /// <summary>
    /// The first checks of a received datagram, the same for both engines: an unfragmented IPv6
    /// datagram whose upper layer is ESP (or AH, suite 3) with a readable SPI; <paramref name="esp"/> is
    /// that upper layer. <see cref="DropReason.None"/> when it is one.
    /// </summary>
    public static DropReason Peek(ReadOnlySpan<byte> datagram, out Ipv6Datagram parsed, out ReadOnlySpan<byte> esp, out uint spi)
    {
        esp = default;
        spi = 0;
        if (!Ipv6Datagram.TryParse(datagram, out parsed).IsOk)
        {
            return DropReason.Malformed;
        }
        if (parsed.IsFragment || parsed.UpperProtocol is not (IpProtocol.Esp or IpProtocol.AuthenticationHeader))
        {
            return DropReason.NotHandled;
        }
        esp = parsed.GetUpper(datagram);
        var peek = parsed.UpperProtocol == IpProtocol.Esp
            ? SecurityAssociation.TryPeekSpi(esp, out spi, out _)
            : SecurityAssociation.TryPeekAuthenticationHeaderSpi(esp, out spi);
        return peek.IsOk ? DropReason.None : DropReason.Malformed;
    }
}
