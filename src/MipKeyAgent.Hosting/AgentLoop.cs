using System.Threading.Channels;
using MipKeyAgent.Protocol;
using MipKeyAgent.Transport;
using Microsoft.Extensions.Logging;

namespace MipKeyAgent.Hosting;

/// <summary>
/// The host loop of one engine (docs/protocol.md): a receive loop copies datagrams from the
/// transport into an inbox, a send loop drains what the engine emitted, and one loop owns the
/// engine: it handles inbox items (datagrams, posted work) in order and calls Tick at the
/// engine's NextDeadline. Engines are single-threaded, so everything touching one goes through
/// this loop (<see cref="InvokeAsync{T}"/> for status queries).
/// On a transport with batch calls (<see cref="IDatagramTransport.Batching"/>: raw sockets on 64-bit Linux) there is no receive loop, inbox copy or
/// send loop: one dedicated thread drains what is readable with recvmmsg, runs the engine on
/// each datagram in place, collects what the engine emits in a send batch and hands it to the
/// kernel with one sendmmsg per received batch; it waits in poll on the socket and an eventfd
/// that <see cref="Post"/> signals. No allocation, copy or thread hand-off per datagram.
/// </summary>
internal sealed class AgentLoop : IDatagramSink, IDisposable
{
    private const int MaxDatagram = 65_535 + 40;

    private readonly IDatagramTransport _transport;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Channel<Action> _inbox = Channel.CreateUnbounded<Action>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Channel<byte[]> _outbox = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true });
    private readonly IBatchingTransport? _direct;
    private readonly RawSendBatch? _batch;
    private readonly TransportWakeup? _wakeup;
    private int _loopThread;

    public AgentLoop(IDatagramTransport transport, TimeProvider time, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(transport);
        _transport = transport;
        _direct = transport.Batching;
        if (_direct is not null && _direct.BatchesSupported)
        {
            _batch = _direct.CreateSendBatch();
            _wakeup = new TransportWakeup();
        }
        _time = time;
        _logger = logger;
    }

    /// <summary>Datagrams handed to the transport so far.</summary>
    public long SentDatagrams => Interlocked.Read(ref _sent);

    private long _sent;

    /// <summary>
    /// The engine's sink. On the batched raw loop's thread: copied into the send batch, sent at the
    /// end of the current batch of work; elsewhere on a raw socket: sent at once; otherwise copied
    /// (the engine reuses its buffer) and queued for the send loop.
    /// </summary>
    public void Send(ReadOnlySpan<byte> datagram)
    {
        if (_direct is null)
        {
            _outbox.Writer.TryWrite(datagram.ToArray());
            return;
        }
        try
        {
            if (_batch is not null && Environment.CurrentManagedThreadId == _loopThread)
            {
                _batch.Add(datagram);
                return;
            }
            _direct.Send(datagram);
            Interlocked.Increment(ref _sent);
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or ObjectDisposedException)
        {
            AgentLog.SendFailed(_logger, _transport.Name, e);
        }
    }

    /// <summary>Runs <paramref name="work"/> on the loop and returns its result.</summary>
    public Task<T> InvokeAsync<T>(Func<T> work)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!TryPost(() =>
            {
                try
                {
                    done.SetResult(work());
                }
                catch (Exception e)
                {
                    done.SetException(e);
                }
            }))
        {
            done.SetException(new InvalidOperationException("the agent loop has stopped"));
        }
        return done.Task;
    }

    /// <summary>Queues <paramref name="work"/> to run on the loop.</summary>
    public void Post(Action work) => TryPost(work);

    /// <summary>As <see cref="Post"/>; false when the loop has stopped (the work will never run).</summary>
    public bool TryPost(Action work)
    {
        if (!_inbox.Writer.TryWrite(work))
        {
            return false;
        }
        _wakeup?.Signal();
        return true;
    }

    /// <summary>
    /// Runs until <paramref name="cancellationToken"/> is cancelled (or the transport ends):
    /// <paramref name="onDatagram"/> gets each received datagram, <paramref name="tick"/> runs when
    /// <paramref name="nextDeadline"/> is due. The outbox is flushed before returning.
    /// </summary>
    public async Task RunAsync(Func<DateTimeOffset?> nextDeadline, Action tick, Action<ReadOnlyMemory<byte>> onDatagram, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(nextDeadline);
        ArgumentNullException.ThrowIfNull(tick);
        if (_batch is not null)
        {
            await RunBatchedAsync(nextDeadline, tick, onDatagram, cancellationToken).ConfigureAwait(false);
            return;
        }
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var receiving = ReceiveLoopAsync(onDatagram, stop);
        var sending = SendLoopAsync(stop.Token);
        try
        {
            while (!stop.IsCancellationRequested)
            {
                while (_inbox.Reader.TryRead(out var work))
                {
                    Run(work);
                }
                var now = _time.GetUtcNow();
                var deadline = nextDeadline();
                if (deadline is { } due && due <= now)
                {
                    Run(tick);
                    if (nextDeadline() is { } again && again <= now)
                    {
                        // An engine whose deadline does not move after Tick would spin; breathe instead.
                        await Task.Delay(TimeSpan.FromMilliseconds(10), _time, stop.Token).ConfigureAwait(false);
                    }
                    continue;
                }
                using var wake = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
                var wait = deadline is { } d ? d - now : Timeout.InfiniteTimeSpan;
                var readable = _inbox.Reader.WaitToReadAsync(wake.Token).AsTask();
                var timer = Task.Delay(wait, _time, wake.Token);
                await Task.WhenAny(readable, timer).ConfigureAwait(false);
                await wake.CancelAsync().ConfigureAwait(false);
                await Task.WhenAll(readable, timer).ContinueWith(static _ => { }, CancellationToken.None,
                    TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            _inbox.Writer.TryComplete();
            _outbox.Writer.TryComplete();
            await Swallow(receiving).ConfigureAwait(false);
            await sending.ConfigureAwait(false);
        }
    }

    private async Task RunBatchedAsync(Func<DateTimeOffset?> nextDeadline, Action tick, Action<ReadOnlyMemory<byte>> onDatagram,
        CancellationToken cancellationToken)
    {
        using var wakeOnStop = cancellationToken.Register(static w => ((TransportWakeup)w!).Signal(), _wakeup);
        var thread = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var loop = new Thread(() =>
        {
            try
            {
                RunBatched(nextDeadline, tick, onDatagram, cancellationToken);
            }
            finally
            {
                _inbox.Writer.TryComplete();
                _outbox.Writer.TryComplete();
                thread.SetResult();
            }
        })
        {
            IsBackground = true,
            Name = "agent loop",
        };
        loop.Start();
        await thread.Task.ConfigureAwait(false);
        _wakeup!.Dispose();
    }

    // The batched raw-socket loop: posted work, due ticks, then one receive batch handled in place,
    // then one sendmmsg for everything the engine emitted meanwhile.
    private void RunBatched(Func<DateTimeOffset?> nextDeadline, Action tick, Action<ReadOnlyMemory<byte>> onDatagram, CancellationToken cancellationToken)
    {
        _loopThread = Environment.CurrentManagedThreadId;
        var direct = _direct!;
        var batch = _batch!;
        var received = direct.CreateReceiveBatch();
        var breathe = false;
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                while (_inbox.Reader.TryRead(out var work))
                {
                    Run(work);
                }
                var now = _time.GetUtcNow();
                if (nextDeadline() is { } due && due <= now)
                {
                    Run(tick);
                    // An engine whose deadline does not move after Tick would spin; breathe instead.
                    breathe = nextDeadline() is { } again && again <= now;
                }
                Flush(batch);
                int timeout = breathe ? 10 : WaitMilliseconds(nextDeadline(), _time.GetUtcNow());
                breathe = false;
                int count;
                try
                {
                    count = direct.ReceiveBatch(received, timeout, _wakeup);
                }
                catch (Exception e) when (e is IOException or ObjectDisposedException)
                {
                    if (!cancellationToken.IsCancellationRequested)
                    {
                        AgentLog.TransportFailed(_logger, _transport.Name, e);
                    }
                    return;
                }
                for (int i = 0; i < count; i++)
                {
                    try
                    {
                        onDatagram(received[i]);
                    }
                    catch (Exception e)
                    {
                        AgentLog.LoopError(_logger, e);
                    }
                }
            }
        }
        finally
        {
            // Answers already produced still go out.
            while (_inbox.Reader.TryRead(out var work))
            {
                Run(work);
            }
            Flush(batch);
            _loopThread = 0;
        }
    }

    private void Flush(RawSendBatch batch)
    {
        if (batch.Count == 0)
        {
            return;
        }
        long failed = batch.Failed;
        try
        {
            Interlocked.Add(ref _sent, batch.Flush());
        }
        catch (ObjectDisposedException e)
        {
            AgentLog.SendFailed(_logger, _transport.Name, e);
        }
        if (batch.Failed != failed)
        {
            AgentLog.SendFailed(_logger, _transport.Name,
                new IOException($"{batch.Failed - failed} datagram(s) refused by the kernel, errno {batch.LastError}"));
        }
    }

    // Until the engine's next deadline, rounded up to a millisecond; -1 without one.
    private static int WaitMilliseconds(DateTimeOffset? deadline, DateTimeOffset now)
    {
        if (deadline is not { } due)
        {
            return -1;
        }
        double milliseconds = Math.Ceiling((due - now).TotalMilliseconds);
        return milliseconds <= 0 ? 0 : (int)Math.Min(milliseconds, int.MaxValue);
    }

    private void Run(Action work)
    {
        try
        {
            work();
        }
        catch (Exception e)
        {
            AgentLog.LoopError(_logger, e);
        }
    }

    private async Task ReceiveLoopAsync(Action<ReadOnlyMemory<byte>> onDatagram, CancellationTokenSource stop)
    {
        var buffer = new byte[MaxDatagram];
        try
        {
            while (!stop.IsCancellationRequested)
            {
                int length = await _transport.ReceiveAsync(buffer, stop.Token).ConfigureAwait(false);
                if (length == 0)
                {
                    AgentLog.TransportEnded(_logger, _transport.Name);
                    await stop.CancelAsync().ConfigureAwait(false);
                    return;
                }
                var copy = buffer.AsMemory(0, length).ToArray();
                _inbox.Writer.TryWrite(() => onDatagram(copy));
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            AgentLog.TransportFailed(_logger, _transport.Name, e);
            await stop.CancelAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Sends until the outbox is completed and drained (so a stop still flushes answers).</summary>
    private async Task SendLoopAsync(CancellationToken cancellationToken)
    {
        _ = cancellationToken;
        await foreach (var datagram in _outbox.Reader.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
        {
            try
            {
                await _transport.SendAsync(datagram, CancellationToken.None).ConfigureAwait(false);
                Interlocked.Increment(ref _sent);
            }
            catch (Exception e)
            {
                AgentLog.SendFailed(_logger, _transport.Name, e);
            }
        }
    }

    private static async Task Swallow(Task task)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Releases the batched loop's eventfd (also released when <see cref="RunAsync"/> ends).</summary>
    public void Dispose() => _wakeup?.Dispose();
}
