namespace MipKeyAgent.Transport;

/// <summary>
/// Moves whole IPv6 datagrams, from the first octet of the IPv6 header to the end of its
/// payload, between an engine and something outside it (a link, a capture, a test).
/// Adapters stay thin (ARCHITECTURE.md): no parsing beyond what choosing datagrams needs.
/// </summary>
/// <remarks>
/// One receiver and any number of senders may use a transport at the same time.
/// </remarks>
public interface IDatagramTransport : IAsyncDisposable
{
    /// <summary>A short name for logs, e.g. "raw:veth0" or "tap:mk0".</summary>
    string Name { get; }

    /// <summary>Sends one datagram. A live link may still lose it; this completes when the
    /// datagram has been handed on (or queued for neighbour resolution), not when it arrives.</summary>
    ValueTask SendAsync(ReadOnlyMemory<byte> datagram, CancellationToken cancellationToken = default);

    /// <summary>
    /// Waits for the next datagram and copies it to the start of <paramref name="buffer"/>.
    /// Returns its length, or 0 when the transport will deliver nothing more (a capture ran out).
    /// Give a buffer that fits the largest datagram of the link (65,535 + 40 octets always does).
    /// </summary>
    ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken = default);

    /// <summary>The transport's synchronous batch calls, or null when it has none (then a host
    /// moves datagrams through <see cref="SendAsync"/> and <see cref="ReceiveAsync"/>).</summary>
    IBatchingTransport? Batching => null;

    /// <summary>Datagrams lost below the transport before it read them (a full kernel buffer), where the
    /// platform counts them; 0 otherwise.</summary>
    long KernelDropped => 0;
}
