using MipKeyAgent.Transport.Internal;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Transport;

/// <summary>
/// Plays back the IPv6 datagrams of a capture as received datagrams, and keeps what the engine
/// sends (in <see cref="Sent"/> and, if given, in a second capture). The same engine code path as
/// production, with the capture standing in for the link (ARCHITECTURE.md).
/// </summary>
/// <remarks>
/// The link types of <see cref="LinkLayer.TryGetIpv6"/> are read (Ethernet with VLAN tags, raw,
/// IPv6, Linux cooked v1 and v2, loopback); frames of other protocols, IPv4 and other link types
/// are skipped and counted in <see cref="Skipped"/>. A malformed capture throws
/// <see cref="InvalidDataException"/> with the reader's typed error. When the capture ends,
/// <see cref="ReceiveAsync"/> returns 0.
/// </remarks>
public sealed class PcapReplayTransport : IDatagramTransport
{
    private readonly CaptureFileReader _reader;
    private readonly PcapWriter? _sentCapture;
    private readonly TimeProvider? _timeProvider;
    private readonly List<ReadOnlyMemory<byte>> _sent = [];
    private readonly Lock _gate = new();
    private bool _ended;
    private bool _disposed;

    /// <param name="capture">The capture to play back; disposed with this transport.</param>
    /// <param name="sentCapture">Where sent datagrams are also written (link type 229 or 101); disposed with this transport.</param>
    /// <param name="timeProvider">Timestamps for <paramref name="sentCapture"/>; without one, the
    /// timestamp of the last replayed record is used, so a replay writes the same file each run.</param>
    /// <param name="name">The name for logs.</param>
    public PcapReplayTransport(CaptureFileReader capture, PcapWriter? sentCapture = null, TimeProvider? timeProvider = null, string name = "replay")
    {
        ArgumentNullException.ThrowIfNull(capture);
        if (sentCapture is not null && sentCapture.LinkType is not (PcapLinkType.Ipv6 or PcapLinkType.Raw))
        {
            throw new ArgumentException("The capture of sent datagrams must hold raw IPv6 datagrams (link type 229 or 101).", nameof(sentCapture));
        }

        _reader = capture;
        _sentCapture = sentCapture;
        _timeProvider = timeProvider;
        Name = name;
    }

    public string Name { get; }

    /// <summary>The timestamp of the record most recently returned by <see cref="ReceiveAsync"/>,
    /// for a host loop that drives its clock from the capture.</summary>
    public DateTimeOffset? LastTimestamp { get; private set; }

    /// <summary>Records passed over because they held no IPv6 datagram.</summary>
    public int Skipped { get; private set; }

    /// <summary>Copies of everything sent so far, in order.</summary>
    public IReadOnlyList<ReadOnlyMemory<byte>> Sent
    {
        get
        {
            lock (_gate)
            {
                return [.. _sent];
            }
        }
    }

    /// <summary>Opens a capture file (classic pcap or pcapng) and, optionally, a file for what is sent.</summary>
    public static PcapReplayTransport Open(string capturePath, string? sentCapturePath = null, TimeProvider? timeProvider = null)
    {
        var error = CaptureFileReader.TryOpen(capturePath, out var reader);
        if (!error.IsOk)
        {
            throw new InvalidDataException($"{capturePath}: {error}");
        }

        var sent = sentCapturePath is null ? null : new PcapWriter(File.Create(sentCapturePath), PcapLinkType.Ipv6);
        return new PcapReplayTransport(reader!, sent, timeProvider, $"replay:{Path.GetFileName(capturePath)}");
    }

    public ValueTask SendAsync(ReadOnlyMemory<byte> datagram, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _sent.Add(datagram.ToArray());
            _sentCapture?.Write(_timeProvider?.GetUtcNow() ?? LastTimestamp ?? DateTimeOffset.UnixEpoch, datagram.Span);
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ObjectDisposedException.ThrowIf(_disposed, this);
        while (!_ended)
        {
            var error = _reader.TryReadNext(out var record, out var endOfFile);
            if (!error.IsOk)
            {
                throw new InvalidDataException($"{Name}: {error}");
            }

            if (endOfFile)
            {
                _ended = true;
                break;
            }

            if (!TryGetIpv6Datagram(record, out var datagram))
            {
                Skipped++;
                continue;
            }

            if (datagram.Length > buffer.Length)
            {
                throw new ArgumentException($"The buffer holds {buffer.Length} octets; the datagram has {datagram.Length}.", nameof(buffer));
            }

            datagram.Span.CopyTo(buffer.Span);
            LastTimestamp = record.Timestamp;
            return ValueTask.FromResult(datagram.Length);
        }

        return ValueTask.FromResult(0);
    }

    public ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            if (!_disposed)
            {
                _disposed = true;
                _reader.Dispose();
                _sentCapture?.Dispose();
            }
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// The IPv6 datagram of one capture record (<see cref="LinkLayer.TryGetIpv6"/>), without
    /// Ethernet minimum-frame padding; false for anything else.
    /// </summary>
    public static bool TryGetIpv6Datagram(PcapRecord record, out ReadOnlyMemory<byte> datagram)
    {
        if (!LinkLayer.TryGetIpv6(record.LinkType, record.Data.Span, out var offset).IsOk)
        {
            datagram = default;
            return false;
        }

        datagram = record.Data[offset..];
        // Ethernet minimum-frame padding is not part of the datagram.
        datagram = datagram[..Datagram.Length(datagram.Span)];
        return true;
    }
}
