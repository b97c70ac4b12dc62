using System.Buffers.Binary;
using MipKeyAgent.Wire.Internal;

namespace MipKeyAgent.Wire;

/// <summary>
/// Writes a classic libpcap file (pcap-savefile(5); draft-ietf-opsawg-pcap section 4-5):
/// little-endian, magic 0xA1B2C3D4 (microsecond timestamps), version 2.4, snapshot length 65535.
/// <code>
/// File header (24):   magic (4) | major 2 (2) | minor 4 (2) | reserved (4) | reserved (4) | SnapLen (4) | LinkType (4)
/// Record header (16): seconds (4) | microseconds (4) | captured length (4) | original length (4) | data
/// </code>
/// Frames longer than the snapshot length are cut to it, keeping their original length.
/// </summary>
public sealed class PcapWriter : IDisposable
{
    public const uint MagicMicroseconds = 0xA1B2C3D4;
    public const ushort VersionMajor = 2;
    public const ushort VersionMinor = 4;
    public const int SnapLength = 65535;

    internal const int FileHeaderLength = 24;
    internal const int RecordHeaderLength = 16;

    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private bool _disposed;

    /// <summary>Writes the file header at once. Stream errors propagate as the stream's exceptions.</summary>
    public PcapWriter(Stream stream, PcapLinkType linkType, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        _stream = stream;
        _leaveOpen = leaveOpen;
        LinkType = linkType;

        Span<byte> header = stackalloc byte[FileHeaderLength];
        BinaryPrimitives.WriteUInt32LittleEndian(header, MagicMicroseconds);
        BinaryPrimitives.WriteUInt16LittleEndian(header[4..], VersionMajor);
        BinaryPrimitives.WriteUInt16LittleEndian(header[6..], VersionMinor);
        BinaryPrimitives.WriteInt32LittleEndian(header[8..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(header[12..], 0);
        BinaryPrimitives.WriteInt32LittleEndian(header[16..], SnapLength);
        BinaryPrimitives.WriteUInt32LittleEndian(header[20..], (uint)linkType);
        _stream.Write(header);
    }

    public PcapLinkType LinkType { get; }

    /// <summary>Appends one record; the timestamp must lie between 1970 and 2106 (32-bit seconds).</summary>
    public void Write(DateTimeOffset timestamp, ReadOnlySpan<byte> frame)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        long ticks = timestamp.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;
        long seconds = ticks / TimeSpan.TicksPerSecond;
        if (ticks < 0 || seconds > uint.MaxValue)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(timestamp), "Classic pcap timestamps are unsigned 32-bit seconds since 1970.");
        }

        int captured = Math.Min(frame.Length, SnapLength);
        Span<byte> header = stackalloc byte[RecordHeaderLength];
        BinaryPrimitives.WriteUInt32LittleEndian(header, (uint)seconds);
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], (uint)(ticks % TimeSpan.TicksPerSecond / TimeSpan.TicksPerMicrosecond));
        BinaryPrimitives.WriteInt32LittleEndian(header[8..], captured);
        BinaryPrimitives.WriteInt32LittleEndian(header[12..], frame.Length);
        _stream.Write(header);
        _stream.Write(frame[..captured]);
    }

    public void Flush() => _stream.Flush();

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _stream.Flush();
        if (!_leaveOpen)
        {
            _stream.Dispose();
        }
    }
}
