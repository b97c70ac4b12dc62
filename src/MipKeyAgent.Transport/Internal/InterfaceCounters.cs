using System.Globalization;
using Microsoft.Win32.SafeHandles;

namespace MipKeyAgent.Transport.Internal;

/// <summary>
/// One interface's kernel counters from /proc/net/dev, opened in the network namespace of the thread
/// that creates it (the file keeps that namespace, whatever thread reads it later).
/// </summary>
internal sealed class InterfaceCounters : IDisposable
{
    /// <summary>Columns after "name:": eight receive counters, then transmit bytes, packets, errors, drops.</summary>
    private const int TransmitDroppedColumn = 11;

    private readonly SafeFileHandle _file;
    private readonly string _prefix;
    private readonly byte[] _buffer = new byte[64 * 1024];

    private InterfaceCounters(SafeFileHandle file, string name)
    {
        _file = file;
        _prefix = name + ":";
    }

    /// <summary>Null where /proc/net/dev cannot be read (the counters then read 0).</summary>
    public static InterfaceCounters? Open(string name)
    {
        try
        {
            return new InterfaceCounters(File.OpenHandle("/proc/thread-self/net/dev"), name);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Packets the kernel dropped on their way out of the interface (for a tun: its queue to our reader was full).</summary>
    public long TransmitDropped()
    {
        int length;
        try
        {
            length = RandomAccess.Read(_file, _buffer, 0);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            return 0;
        }
        foreach (var line in System.Text.Encoding.ASCII.GetString(_buffer, 0, length).Split('\n'))
        {
            var trimmed = line.TrimStart();
            if (trimmed.StartsWith(_prefix, StringComparison.Ordinal))
            {
                var columns = trimmed[_prefix.Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return columns.Length > TransmitDroppedColumn && long.TryParse(columns[TransmitDroppedColumn], NumberStyles.None, CultureInfo.InvariantCulture, out var dropped)
                    ? dropped
                    : 0;
            }
        }
        return 0;
    }

    public void Dispose() => _file.Dispose();
}
