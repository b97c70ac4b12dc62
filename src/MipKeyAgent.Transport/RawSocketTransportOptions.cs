using MipKeyAgent.Wire;

namespace MipKeyAgent.Transport;

/// <summary>Which interface and which datagrams a <see cref="RawSocketTransport"/> takes.</summary>
public sealed class RawSocketTransportOptions
{
    /// <summary>The interface to listen on and send through (in the namespace of the thread that opens the transport).</summary>
    public required string InterfaceName { get; init; }

    /// <summary>Datagrams whose IPv6 destination is one of these are delivered.</summary>
    public required IReadOnlyList<Ipv6Address> LocalAddresses { get; init; }

    /// <summary>Delivered when the extension-header chain reaches one of these (default: Mobility Header 135, ESP 50, AH 51 for suite 3).</summary>
    public IReadOnlyList<byte> UpperProtocols { get; init; } = [IpProtocol.Mobility, IpProtocol.Esp, IpProtocol.AuthenticationHeader];

    /// <summary>
    /// The packet socket's receive buffer (SO_RCVBUFFORCE, else SO_RCVBUF capped by
    /// net.core.rmem_max): room for a burst of datagrams while the receiving thread waits for a
    /// core. The kernel's default (~212 KiB, ~270 small datagrams) overflows, dropping BUs, when a
    /// busy home agent is descheduled for a few tens of milliseconds. Null keeps the default.
    /// </summary>
    public int? ReceiveBufferBytes { get; init; } = 4 * 1024 * 1024;
}
