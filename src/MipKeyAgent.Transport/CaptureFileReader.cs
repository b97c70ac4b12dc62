using System.Runtime.InteropServices;
using MipKeyAgent.Transport.Internal;
using MipKeyAgent.Wire;
using SharpPcap;
using SharpPcap.LibPcap;

namespace MipKeyAgent.Transport;

/// <summary>
/// Reads capture files through libpcap (SharpPcap): classic pcap in either byte order with
/// microsecond or nanosecond timestamps, and pcapng with several sections and interfaces
/// (libpcap applies each interface's if_tsresol and if_tsoffset). Timestamps are read at
/// nanosecond resolution and kept to the 100 ns of <see cref="DateTimeOffset"/>.
/// </summary>
/// <remarks>
/// A file libpcap refuses (a bad magic, a cut-short header or record, a pcapng whose interfaces
/// have different link types, which libpcap does not read) gives a <see cref="WireError"/>
/// carrying libpcap's own message, at offset 0: libpcap does not say where. Each record's data is
/// a fresh array, so records stay valid after the next read. Without libpcap every entry point
/// throws <see cref="LibpcapMissingException"/>.
/// </remarks>
public sealed class CaptureFileReader : IDisposable
{
    private const long TicksPerSecond = TimeSpan.TicksPerSecond;
    private const long NanosecondsPerTick = 100;
    private static readonly long MaxSeconds = ((DateTimeOffset.MaxValue.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / TicksPerSecond) - 1;

    private readonly CaptureReaderDevice _device;
    private readonly IntPtr _memory;

    private CaptureFileReader(CaptureReaderDevice device, IntPtr memory)
    {
        _device = device;
        _memory = memory;
        LinkType = ToLinkType(device.LinkType);
    }

    /// <summary>The file's link type (a pcapng's interfaces all share it).</summary>
    public PcapLinkType LinkType { get; }

    /// <summary>Opens a capture file by name.</summary>
    public static WireError TryOpen(string path, out CaptureFileReader? reader)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        Libpcap.EnsureLoaded();
        return TryOpenDevice(new CaptureFileReaderDevice(path), IntPtr.Zero, out reader);
    }

    /// <summary>Reads the rest of <paramref name="stream"/> into memory and opens it; disposes the stream.</summary>
    public static WireError TryOpen(Stream stream, out CaptureFileReader? reader) => TryOpen(stream, leaveOpen: false, out reader);

    /// <summary>
    /// Reads the rest of <paramref name="stream"/> (from its position) into unmanaged memory and
    /// hands libpcap a <c>FILE*</c> over it (fmemopen(3)); a <see cref="FileStream"/> at its start
    /// is read by name instead. Meant for captures of test and demo size: large files go by path.
    /// Stream exceptions propagate.
    /// </summary>
    public static WireError TryOpen(Stream stream, bool leaveOpen, out CaptureFileReader? reader)
    {
        ArgumentNullException.ThrowIfNull(stream);
        Libpcap.EnsureLoaded();
        if (stream is FileStream { Position: 0 } fileStream && File.Exists(fileStream.Name))
        {
            // A whole file: libpcap reads it by name, without a copy in memory.
            string name = fileStream.Name;
            if (!leaveOpen)
            {
                stream.Dispose();
            }

            return TryOpenDevice(new CaptureFileReaderDevice(name), IntPtr.Zero, out reader);
        }

        byte[] contents;
        using (var copy = new MemoryStream())
        {
            stream.CopyTo(copy);
            contents = copy.ToArray();
        }

        if (!leaveOpen)
        {
            stream.Dispose();
        }

        // fmemopen of zero octets fails with EINVAL; one octet of nothing gives libpcap's own "truncated" message.
        IntPtr memory = Marshal.AllocHGlobal(Math.Max(contents.Length, 1));
        Marshal.Copy(contents, 0, memory, contents.Length);
        IntPtr file = LibC.fmemopen(memory, (nuint)contents.Length, "rb");
        if (file == IntPtr.Zero)
        {
            Marshal.FreeHGlobal(memory);
            reader = null;
            return new WireError(WireErrorKind.Truncated, 0, "capture shorter than its magic number");
        }

        // libpcap owns the FILE* from here and closes it with the device.
        return TryOpenDevice(new CaptureHandleReaderDevice(new StdioFile(file)), memory, out reader);
    }

    /// <summary>
    /// Reads the next packet. At a clean end of file returns success with
    /// <paramref name="endOfFile"/> set; a file that stops inside a record or block is an error.
    /// </summary>
    public WireError TryReadNext(out PcapRecord record, out bool endOfFile)
    {
        record = default;
        endOfFile = false;
        // pcap_next_ex through SharpPcap's pointer entry point: its GetNextPacket allocates a header and a
        // timeval object per record, which tripled the cost of reading a large file (benchmarks.md, "Capture files").
        IntPtr header = IntPtr.Zero;
        IntPtr data = IntPtr.Zero;
        int status = _device.GetNextPacketPointers(ref header, ref data);
        switch (status)
        {
            case 1:
                break;
            case -2:
                endOfFile = true;
                return WireError.None;
            default:
                return new WireError(WireErrorKind.Truncated, 0, _device.LastError ?? "libpcap could not read the next record");
        }

        // struct pcap_pkthdr on LP64 Linux: struct timeval (tv_sec, tv_usec: 8 octets each; nanoseconds
        // in tv_usec when opened with nanosecond precision), caplen (4), len (4).
        long seconds = Marshal.ReadInt64(header);
        long nanoseconds = Marshal.ReadInt64(header, 8);
        int captured = Marshal.ReadInt32(header, 16);
        int original = Marshal.ReadInt32(header, 20);
        if (seconds < 0 || seconds > MaxSeconds || captured < 0)
        {
            return new WireError(WireErrorKind.BadValue, 0, "timestamp outside the representable range");
        }

        var time = DateTimeOffset.UnixEpoch.AddTicks((seconds * TicksPerSecond) + (nanoseconds / NanosecondsPerTick));
        var bytes = new byte[captured];
        Marshal.Copy(data, bytes, 0, captured);
        record = new PcapRecord(time, LinkType, bytes, original < 0 ? int.MaxValue : original);
        return WireError.None;
    }

    public void Dispose()
    {
        _device.Dispose();
        if (_memory != IntPtr.Zero)
        {
            Marshal.FreeHGlobal(_memory);
        }
    }

    /// <summary>pcap_datalink gives DLT_ values; all but DLT_RAW equal their LINKTYPE_ for the types we decode.</summary>
    internal static PcapLinkType ToLinkType(PacketDotNet.LinkLayers dlt) => (int)dlt switch
    {
        12 or 14 => PcapLinkType.Raw, // DLT_RAW on Linux (12) and OpenBSD (14)
        var value => (PcapLinkType)value,
    };

    private static WireError TryOpenDevice(CaptureReaderDevice device, IntPtr memory, out CaptureFileReader? reader)
    {
        reader = null;
        try
        {
            device.Open(new DeviceConfiguration { TimestampResolution = TimestampResolution.Nanosecond });
        }
        catch (PcapException e)
        {
            device.Dispose();
            if (memory != IntPtr.Zero)
            {
                Marshal.FreeHGlobal(memory);
            }

            return new WireError(WireErrorKind.Unsupported, 0, e.Message);
        }

        reader = new CaptureFileReader(device, memory);
        return WireError.None;
    }

    /// <summary>A stdio <c>FILE*</c> handed to libpcap, which closes it; this handle never does.</summary>
    private sealed class StdioFile : SafeHandle
    {
        public StdioFile(IntPtr file)
            : base(IntPtr.Zero, ownsHandle: false) => SetHandle(file);

        public override bool IsInvalid => handle == IntPtr.Zero;

        protected override bool ReleaseHandle() => true;
    }
}
