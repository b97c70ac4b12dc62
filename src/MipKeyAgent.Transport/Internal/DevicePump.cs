using System.Threading.Channels;

namespace MipKeyAgent.Transport.Internal;

/// <summary>Handles one frame (or packet, for a tun) read from the device; valid during the call only.</summary>
internal delegate void DeviceReadHandler(ReadOnlySpan<byte> read);

/// <summary>
/// The receive side shared by the tap, tun and home-link transports: a dedicated thread (the
/// device's reads block in poll()) reads each frame and hands it to the owner's handler, which
/// queues the IPv6 datagrams it takes with <see cref="Enqueue"/> for <see cref="ReceiveAsync"/>.
/// A full queue is a counted drop; or, with <c>waitWhenFull</c>, the pump stops reading until the
/// receiver makes room, so the device's own queue fills instead: back-pressure where the kernel
/// offers it (a tun's sender is held by TCP Small Queues), a kernel-counted drop where it does not.
/// A device failure ends the pump, and the receiver sees the exception; after
/// <see cref="DisposeAsync"/> the receiver gets 0.
/// </summary>
internal sealed class DevicePump : IAsyncDisposable
{
    private readonly Channel<byte[]> _queue;
    private readonly CancellationTokenSource _stop = new();
    private readonly bool _waitWhenFull;
    private const int BatchCapacity = 64;
    private const int PollMilliseconds = 100;
    private Task _loop = Task.CompletedTask;
    private long _droppedQueueFull;
    private int _disposed;

    public DevicePump(IFrameDevice device, int queueLength, bool waitWhenFull = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(queueLength);
        Device = device;
        _waitWhenFull = waitWhenFull;
        _queue = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(queueLength)
        {
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    public IFrameDevice Device { get; }

    /// <summary>Datagrams the handler took while the queue was full.</summary>
    public long DroppedQueueFull => Interlocked.Read(ref _droppedQueueFull);

    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <summary>Starts reading; called once, after the owner is ready to handle frames.</summary>
    public void Start(DeviceReadHandler handler, int bufferLength)
    {
        ArgumentNullException.ThrowIfNull(handler);
        _loop = Task.Factory.StartNew(() => ReadLoopAsync(handler, bufferLength), CancellationToken.None,
            TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
    }

    /// <summary>Queues a copy of <paramref name="datagram"/> for the receiver (from the handler only).</summary>
    public void Enqueue(ReadOnlySpan<byte> datagram)
    {
        var copy = datagram.ToArray();
        while (!_queue.Writer.TryWrite(copy))
        {
            if (!_waitWhenFull)
            {
                Interlocked.Increment(ref _droppedQueueFull);
                return;
            }

            // The pump's own thread: it waits for room (or the stop, which ends the read loop).
            if (!_queue.Writer.WaitToWriteAsync(_stop.Token).AsTask().GetAwaiter().GetResult())
            {
                return;
            }
        }
    }

    /// <summary>Waits for the next queued datagram and copies it to <paramref name="buffer"/>; 0 after disposal.</summary>
    public async ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (_queue.Reader.TryRead(out var datagram))
            {
                if (datagram.Length > buffer.Length)
                {
                    throw new ArgumentException($"The buffer holds {buffer.Length} octets; the datagram has {datagram.Length}.", nameof(buffer));
                }

                datagram.CopyTo(buffer);
                return datagram.Length;
            }

            if (!await _queue.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                return 0;
            }
        }
    }

    /// <summary>
    /// Waits for at least one queued datagram, then moves up to <paramref name="max"/> of those queued into
    /// <paramref name="into"/>, which owns them from then on (no copy); 0 after disposal.
    /// </summary>
    public async ValueTask<int> ReceiveManyAsync(List<byte[]> into, int max, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(max);
        while (true)
        {
            int taken = 0;
            while (taken < max && _queue.Reader.TryRead(out var datagram))
            {
                into.Add(datagram);
                taken++;
            }

            if (taken > 0)
            {
                return taken;
            }

            if (!await _queue.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                return 0;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        _queue.Writer.TryComplete();
        Device.Dispose();
        _stop.Dispose();
    }

    /// <summary>Up to <see cref="BatchCapacity"/> frames per system call, waiting in short polls so a stop is seen.</summary>
    private void ReadBatches(IBatchFrameDevice device, DeviceReadHandler handler, int bufferLength)
    {
        var batch = new RawReceiveBatch(BatchCapacity, bufferLength);
        while (!_stop.IsCancellationRequested)
        {
            int count = device.ReadFrames(batch, PollMilliseconds);
            for (int i = 0; i < count; i++)
            {
                handler(batch[i].Span);
            }
        }
    }

    private async Task ReadLoopAsync(DeviceReadHandler handler, int bufferLength)
    {
        var buffer = new byte[bufferLength];
        try
        {
            if (Device is IBatchFrameDevice batched && MessageLayout.Supported)
            {
                ReadBatches(batched, handler, bufferLength);
            }

            while (!_stop.IsCancellationRequested)
            {
                var length = await Device.ReadFrameAsync(buffer, _stop.Token).ConfigureAwait(false);
                handler(buffer.AsSpan(0, length));
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            // A device failure ends the transport; the receiver sees the exception.
            _queue.Writer.TryComplete(e);
            return;
        }

        _queue.Writer.TryComplete();
    }
}
