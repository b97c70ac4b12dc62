using SharpPcap;
using SharpPcap.LibPcap;

namespace MipKeyAgent.Transport.Internal;

/// <summary>
/// One kernel interface through libpcap (SharpPcap's live device): frames written with
/// pcap_inject, frames read through a BPF filter. Needs CAP_NET_RAW.
/// </summary>
internal sealed class LibpcapInterface : IFrameDevice
{
    private readonly LibPcapLiveDevice _device;

    private LibpcapInterface(LibPcapLiveDevice device)
    {
        _device = device;
    }

    public string Name => _device.Name;

    /// <summary>The interface's MAC; empty when it has none (a tun, loopback).</summary>
    public byte[] MacAddress => _device.MacAddress?.GetAddressBytes() ?? [];

    /// <summary>
    /// Opens <paramref name="interfaceName"/> (in the calling thread's namespace). With
    /// <paramref name="filter"/>, only frames matching that BPF expression (pcap-filter(7)) are read.
    /// libpcap's own error (no such device, no permission) becomes an <see cref="IOException"/>.
    /// </summary>
    public static LibpcapInterface Open(string interfaceName, string? filter = null, int readTimeoutMilliseconds = 100)
    {
        Libpcap.EnsureLoaded();
        var found = LibPcapLiveDeviceList.New().FirstOrDefault(d => d.Name == interfaceName)
            ?? throw new IOException($"{interfaceName}: libpcap lists no such interface (ip link shows the interfaces of this namespace)");
        try
        {
            found.Open(new DeviceConfiguration
            {
                Mode = DeviceModes.Promiscuous,
                ReadTimeout = readTimeoutMilliseconds,
                Snaplen = 65535,
                Immediate = true,
                TimestampResolution = TimestampResolution.Nanosecond,
            });
            if (filter is not null)
            {
                found.Filter = filter;
            }
        }
        catch (PcapException e)
        {
            found.Dispose();
            throw new IOException($"{interfaceName}: {e.Message} (capturing and injecting need CAP_NET_RAW)", e);
        }

        return new LibpcapInterface(found);
    }

    /// <summary>The link type libpcap reports for the interface.</summary>
    public Wire.PcapLinkType LinkType => CaptureFileReader.ToLinkType(_device.LinkType);

    public ValueTask<int> ReadFrameAsync(Memory<byte> buffer, CancellationToken cancellationToken) =>
        throw new NotSupportedException("Read with TryRead; libpcap's reads block on its own timeout.");

    /// <summary>
    /// Waits up to the read timeout for one frame; false when none came. The frame is copied into
    /// <paramref name="buffer"/> (cut to its size).
    /// </summary>
    public bool TryRead(byte[] buffer, out int length, out int originalLength, out DateTimeOffset timestamp)
    {
        length = 0;
        originalLength = 0;
        timestamp = default;
        var status = _device.GetNextPacket(out PacketCapture packet);
        if (status == GetPacketStatus.Error)
        {
            throw new IOException($"{Name}: {_device.LastError}");
        }

        if (status != GetPacketStatus.PacketRead)
        {
            return false;
        }

        length = Math.Min(packet.Data.Length, buffer.Length);
        packet.Data[..length].CopyTo(buffer);
        originalLength = packet.Header is PcapHeader header ? (int)Math.Min(header.PacketLength, int.MaxValue) : packet.Data.Length;
        timestamp = DateTimeOffset.UnixEpoch.AddTicks((long)(packet.Header.Timeval.Value * TimeSpan.TicksPerSecond));
        return true;
    }

    public void WriteFrame(ReadOnlySpan<byte> frame) => _device.SendPacket(frame);

    public void Dispose() => _device.Dispose();
}
