using System.Security.Cryptography;

namespace MipKeyAgent.QkdNode;

/// <summary>
/// Drives <see cref="KeyGenerationPlanner"/> on a TimeProvider timer: each tick generates
/// the keys due per peer, stores local ones, and for a paired slave KME hands them to
/// <c>share</c> (the link push) before they become issuable, so the master never issues a
/// key the slave does not hold. A batch the link refused is retried with backoff, never
/// regenerated. Also advances session states (starting -> connected once keys flow,
/// terminating -> deleted).
/// </summary>
internal sealed class KeyGenerationLoop : IDisposable
{
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(5);
    private readonly KeyStore _store;
    private readonly SessionTable _sessions;
    private readonly KeyGenerationPlanner _planner;
    private readonly TimeProvider _time;
    private readonly int _keyBytes;
    private readonly int _maxKeyCount;
    private readonly string _localKmeId;
    private readonly Func<string, IReadOnlyList<StoredKey>, CancellationToken, Task<bool>>? _share;
    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Dictionary<string, ShareState> _shares = new(StringComparer.Ordinal);
    private ITimer? _timer;
    private int _disposed;
    private int _ticking;

    public KeyGenerationLoop(KeyStore store, SessionTable sessions, KeyGenerationPlanner planner, TimeProvider time, int keyBytes, int maxKeyCount, string localKmeId,
        Func<string, IReadOnlyList<StoredKey>, CancellationToken, Task<bool>>? share)
    {
        _store = store;
        _sessions = sessions;
        _planner = planner;
        _time = time;
        _keyBytes = keyBytes;
        _maxKeyCount = maxKeyCount;
        _localKmeId = localKmeId;
        _share = share;
    }

    public long SharedTotal { get; private set; }
    public long ShareFailures { get; private set; }
    public int PendingShare { get { lock (_lock) { return _shares.Values.Sum(p => p.Pending.Count + p.InFlight); } } }

    /// <summary>Keys generated for <paramref name="peer"/> and not yet acknowledged by it.</summary>
    public int PendingFor(string peer) { lock (_lock) { return _shares.TryGetValue(peer, out var p) ? p.Pending.Count + p.InFlight : 0; } }

    /// <summary>The link push state toward one slave KME: each link retries on its own.</summary>
    private sealed class ShareState
    {
        public List<StoredKey> Pending = [];
        public bool Sharing;
        public int InFlight;
        public TimeSpan Backoff = TimeSpan.Zero;
        public long RetryAt;
    }

    private ShareState Share(string peer)
    {
        if (!_shares.TryGetValue(peer, out var state))
        {
            state = new ShareState();
            _shares[peer] = state;
        }
        return state;
    }

    public void Start(TimeSpan tick) => _timer = _time.CreateTimer(_ => Tick(), null, tick, tick);

    /// <summary>Generates <paramref name="count"/> keys now, outside the rate (prefill).</summary>
    public void Prefill(string peerKmeId, int count)
    {
        var keys = Generate(Math.Min(count, _maxKeyCount));
        if (peerKmeId == _localKmeId || _share is null)
        {
            _store.Add(peerKmeId, keys);
        }
        else
        {
            lock (_lock)
            {
                Share(peerKmeId).Pending.AddRange(keys);
            }
        }
    }

    /// <summary>One step; public so tests can drive it without a timer.</summary>
    public void Tick()
    {
        // System timers may overlap a slow tick; the planner is single-threaded by design.
        if (Interlocked.Exchange(ref _ticking, 1) != 0)
        {
            return;
        }
        try
        {
            TickOnce();
        }
        finally
        {
            Volatile.Write(ref _ticking, 0);
        }
    }

    private void TickOnce()
    {
        foreach (var peer in _planner.Peers)
        {
            var shared = peer != _localKmeId && _share is not null;
            var room = _maxKeyCount - _store.Count(peer) - (shared ? PendingFor(peer) : 0);
            var due = _planner.TakeDue(peer, room);
            if (due > 0)
            {
                var keys = Generate(due);
                if (shared)
                {
                    lock (_lock)
                    {
                        Share(peer).Pending.AddRange(keys);
                    }
                }
                else
                {
                    _store.Add(peer, keys);
                }
            }
            if (shared)
            {
                TryShare(peer);
            }
        }
        foreach (var peer in _planner.Peers)
        {
            if (_store.Count(peer) > 0)
            {
                _sessions.MarkConnected(peer);
            }
        }
        _sessions.DeleteTerminated();
    }

    private void TryShare(string peer)
    {
        List<StoredKey> batch;
        lock (_lock)
        {
            var state = Share(peer);
            if (state.Sharing || state.Pending.Count == 0 || _time.GetTimestamp() < state.RetryAt)
            {
                return;
            }
            state.Sharing = true;
            batch = state.Pending;
            state.Pending = [];
            state.InFlight = batch.Count;
        }
        _ = ShareAsync(peer, batch);
    }

    private async Task ShareAsync(string peer, List<StoredKey> batch)
    {
        var ok = false;
        try
        {
            ok = await _share!(peer, batch, _stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        lock (_lock)
        {
            var state = Share(peer);
            if (ok)
            {
                _store.Add(peer, batch);
                SharedTotal += batch.Count;
                state.Backoff = TimeSpan.Zero;
            }
            else
            {
                // Keep the batch (same key_IDs and bytes) for the next try: each key is
                // shared once; the slave ignores a key_ID it already holds.
                ShareFailures++;
                state.Pending.InsertRange(0, batch);
                state.Backoff = state.Backoff == TimeSpan.Zero ? TimeSpan.FromMilliseconds(100) : TimeSpan.FromTicks(Math.Min(state.Backoff.Ticks * 2, MaxBackoff.Ticks));
                state.RetryAt = _time.GetTimestamp() + (long)(state.Backoff.TotalSeconds * _time.TimestampFrequency);
            }
            state.Sharing = false;
            state.InFlight = 0;
        }
    }

    private List<StoredKey> Generate(int count)
    {
        var keys = new List<StoredKey>(count);
        for (var i = 0; i < count; i++)
        {
            var bytes = new byte[_keyBytes];
            RandomNumberGenerator.Fill(bytes);
            keys.Add(new StoredKey(Guid.NewGuid(), bytes));
        }
        return keys;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        _timer?.Dispose();
        _stop.Cancel();
        lock (_lock)
        {
            foreach (var state in _shares.Values)
            {
                state.Pending.ForEach(k => k.Dispose());
                state.Pending.Clear();
            }
        }
    }
}
