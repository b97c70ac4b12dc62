using MipKeyAgent.Wire;

namespace MipKeyAgent.Transport;

/// <summary>
/// Wraps a transport and writes every datagram sent and received through it to a capture
/// (link type <see cref="PcapLinkType.Ipv6"/>, so tshark dissects it as it stands), stamped by
/// an injected <see cref="TimeProvider"/> so simulated runs produce the same file each time.
/// </summary>
/// <remarks>
/// Sent datagrams are recorded after the inner transport accepted them; received ones as they
/// arrive. Records are written under a lock, so concurrent senders and the receiver interleave
/// whole records.
/// </remarks>
public sealed class CapturingTransport : IDatagramTransport
{
    private readonly IDatagramTransport _inner;
    private readonly PcapWriter _capture;
    private readonly TimeProvider _timeProvider;
    private readonly bool _ownsCapture;
    private readonly Lock _gate = new();
    private bool _disposed;

    /// <param name="inner">The transport that really moves the datagrams; disposed with this one.</param>
    /// <param name="capture">A writer whose link type is <see cref="PcapLinkType.Ipv6"/> or <see cref="PcapLinkType.Raw"/>.</param>
    /// <param name="timeProvider">The clock for record timestamps.</param>
    /// <param name="ownsCapture">Whether disposing this transport disposes <paramref name="capture"/>.</param>
    public CapturingTransport(IDatagramTransport inner, PcapWriter capture, TimeProvider timeProvider, bool ownsCapture = true)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(capture);
        ArgumentNullException.ThrowIfNull(timeProvider);
        if (capture.LinkType is not (PcapLinkType.Ipv6 or PcapLinkType.Raw))
        {
            throw new ArgumentException("The capture must hold raw IPv6 datagrams (link type 229 or 101).", nameof(capture));
        }

        _inner = inner;
        _capture = capture;
        _timeProvider = timeProvider;
        _ownsCapture = ownsCapture;
    }

    public string Name => $"capture({_inner.Name})";

    public long KernelDropped => _inner.KernelDropped;

    /// <summary>Datagrams written to the capture so far.</summary>
    public long Recorded { get; private set; }

    public async ValueTask SendAsync(ReadOnlyMemory<byte> datagram, CancellationToken cancellationToken = default)
    {
        await _inner.SendAsync(datagram, cancellationToken).ConfigureAwait(false);
        Record(datagram.Span);
    }

    public async ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var length = await _inner.ReceiveAsync(buffer, cancellationToken).ConfigureAwait(false);
        if (length > 0)
        {
            Record(buffer.Span[..length]);
        }

        return length;
    }

    public async ValueTask DisposeAsync()
    {
        await _inner.DisposeAsync().ConfigureAwait(false);
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            if (_ownsCapture)
            {
                _capture.Dispose();
            }
            else
            {
                _capture.Flush();
            }
        }
    }

    private void Record(ReadOnlySpan<byte> datagram)
    {
        lock (_gate)
        {
            // A late datagram after disposal (a receive racing the shutdown) is not an error.
            if (_disposed)
            {
                return;
            }

            _capture.Write(_timeProvider.GetUtcNow(), datagram);
            Recorded++;
        }
    }
}
