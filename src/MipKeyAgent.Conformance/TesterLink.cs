using System.Collections.Concurrent;
using System.Threading.Channels;
using MipKeyAgent.Esp;
using MipKeyAgent.Transport;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Conformance;

/// <summary>
/// The tester's end of the link: one receive loop hands every ESP datagram from the target to the
/// tester node that owns its SPI (all nodes share the tester's care-of address, and their SPIs
/// are unique on the target). Datagrams nobody owns are counted.
/// </summary>
internal sealed class TesterLink : IAsyncDisposable
{
    private readonly IDatagramTransport _transport;
    private readonly ConcurrentDictionary<uint, ChannelWriter<Arrival>> _owners = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private long _unrouted;

    public TesterLink(IDatagramTransport transport)
    {
        _transport = transport;
        _loop = Task.Run(ReceiveLoop);
    }

    public long Unrouted => Interlocked.Read(ref _unrouted);

    public void Own(uint spi, ChannelWriter<Arrival> inbox) => _owners[spi] = inbox;

    public void Release(uint spi) => _owners.TryRemove(spi, out _);

    public ValueTask SendAsync(byte[] datagram, CancellationToken cancellationToken) => _transport.SendAsync(datagram, cancellationToken);

    private async Task ReceiveLoop()
    {
        var buffer = new byte[65_535 + 40];
        while (!_stop.IsCancellationRequested)
        {
            int length;
            try
            {
                length = await _transport.ReceiveAsync(buffer, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            if (length == 0)
            {
                return;
            }
            var datagram = buffer.AsSpan(0, length).ToArray();
            if (Ipv6Datagram.TryParse(datagram, out var parsed).IsOk && parsed.UpperProtocol == IpProtocol.Esp
                && SecurityAssociation.TryPeekSpi(parsed.GetUpper(datagram), out uint spi, out _).IsOk
                && _owners.TryGetValue(spi, out var owner))
            {
                owner.TryWrite(new Arrival(DateTimeOffset.UtcNow, datagram));
            }
            else
            {
                Interlocked.Increment(ref _unrouted);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _loop;
        }
        catch (OperationCanceledException)
        {
        }
        _stop.Dispose();
    }
}

/// <summary>A datagram from the target and when it arrived.</summary>
internal readonly record struct Arrival(DateTimeOffset Time, byte[] Datagram);

internal static class Arrivals
{
    /// <summary>The next datagram in <paramref name="inbox"/>, or null after <paramref name="timeout"/>; the case's own
    /// cancellation still ends the wait with an exception.</summary>
    public static async Task<Arrival?> NextAsync(ChannelReader<Arrival> inbox, TimeSpan timeout, CancellationToken caseCancellation)
    {
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(caseCancellation);
        wait.CancelAfter(timeout);
        try
        {
            return await inbox.ReadAsync(wait.Token);
        }
        catch (OperationCanceledException) when (!caseCancellation.IsCancellationRequested)
        {
            return null;
        }
    }
}
