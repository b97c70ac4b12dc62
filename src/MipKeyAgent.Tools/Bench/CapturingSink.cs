using MipKeyAgent.Protocol;

namespace MipKeyAgent.Tools.Bench;

/// <summary>
/// An <see cref="IDatagramSink"/> that keeps a copy of the last datagram sent (the engines
/// reuse their buffers), so a benchmark can hand it to the peer engine without a queue, a task
/// or an allocation.
/// </summary>
internal sealed class CapturingSink : IDatagramSink
{
    private readonly byte[] _buffer = new byte[ushort.MaxValue + 40];

    public int Length { get; private set; }

    public int Count { get; private set; }

    public ReadOnlySpan<byte> Last => _buffer.AsSpan(0, Length);

    public void Send(ReadOnlySpan<byte> datagram)
    {
        datagram.CopyTo(_buffer);
        Length = datagram.Length;
        Count++;
    }

    /// <summary>Takes the captured datagram (empty when nothing was sent since the last take).</summary>
    public ReadOnlySpan<byte> Take()
    {
        var span = _buffer.AsSpan(0, Length);
        Length = 0;
        return span;
    }
}
