using MipKeyAgent.KeySupply.Etsi014;

namespace MipKeyAgent.KeySupply;

/// <summary>Sizing and retry settings of a <see cref="KeyPrefetchBuffer"/>.</summary>
public sealed record KeyPrefetchOptions
{
    /// <summary>Keys held even with no demand (so the first rekey never waits on the KME).</summary>
    public int MinDepth { get; init; } = 2;

    /// <summary>Upper bound on held keys, whatever the demand.</summary>
    public int MaxDepth { get; init; } = 256;

    /// <summary>Hold enough keys for this much time at the observed demand.</summary>
    public TimeSpan Horizon { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Demand is the number of takes in this trailing window, per second.</summary>
    public TimeSpan DemandWindow { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Largest single request (the KME's max_key_per_request).</summary>
    public int MaxPerRequest { get; init; } = 16;

    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromSeconds(1);
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Judges each key as it arrives: null when usable, else the reason it is not (a short
    /// snake_case word). Unusable keys are zeroed and counted, never buffered, and the answer that
    /// carried them counts as a failed fetch. Null: every key is usable.</summary>
    public Func<EtsiKey, string?>? KeyCheck { get; init; }

    /// <summary>Told after a fetch that carried unusable keys: the reason and how many (for the log).</summary>
    public Action<string, int>? Rejected { get; init; }
}

/// <summary>
/// Keys fetched ahead of need from a KME so a rekey takes one from memory. The depth
/// follows demand (takes per second over a trailing window, times a horizon, clamped);
/// refills run in the background. Every failure goes through one exponential backoff
/// (<see cref="KeyPrefetchOptions.InitialBackoff"/> doubling to <see cref="KeyPrefetchOptions.MaxBackoff"/>):
/// no key now, timeout, transport failure (refused, reset, TLS), an unexpected answer, a
/// fetcher that throws, and an answer with unusable keys (<see cref="KeyPrefetchOptions.KeyCheck"/>),
/// which also halves the request size, so a KME serving unusable keys drains its pool by at most
/// 2 x MaxPerRequest keys and then one key per MaxBackoff. Time comes from the injected
/// <see cref="TimeProvider"/> only, so tests drive it with a manual clock.
/// </summary>
public sealed class KeyPrefetchBuffer : IDisposable
{
    private readonly Func<int, CancellationToken, Task<EtsiResult<KeyContainer>>> _fetch;
    private readonly KeyPrefetchOptions _options;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private readonly Queue<EtsiKey> _keys = new();
    private readonly Queue<long> _takes = new();
    private readonly CancellationTokenSource _stop = new();
    private bool _fetching;
    private bool _backingOff;
    private bool _disposed;
    private ITimer? _backoffTimer;
    private int _requestCap;
    private readonly Dictionary<string, long> _rejected = new(StringComparer.Ordinal);
    private long _requested;
    private long _received;
    private long _taken;
    private long _fetchFailures;
    private long _wasted;
    private long _late;

    /// <param name="fetch">Asks the KME for up to n keys, e.g.
    /// <c>(n, ct) =&gt; client.GetEncKeysAsync(slave, new KeyRequest { Number = n }, ct)</c>.</param>
    public KeyPrefetchBuffer(Func<int, CancellationToken, Task<EtsiResult<KeyContainer>>> fetch, KeyPrefetchOptions options, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(options.MinDepth);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxDepth, Math.Max(1, options.MinDepth));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.MaxPerRequest);
        _fetch = fetch;
        _options = options;
        _time = time;
        _requestCap = options.MaxPerRequest;
    }

    public int Count
    {
        get { lock (_lock) { return _keys.Count; } }
    }

    /// <summary>Keys the buffer aims to hold now.</summary>
    public int TargetDepth
    {
        get { lock (_lock) { return Target(); } }
    }

    /// <summary>Failed fetches in a row (0 after a success).</summary>
    public int ConsecutiveFailures { get; private set; }

    /// <summary>The wait before the next fetch after the last failure.</summary>
    public TimeSpan CurrentBackoff { get; private set; }

    /// <summary>What the last fetch answered.</summary>
    public EtsiResultKind? LastResult { get; private set; }

    /// <summary>Why the last failed fetch failed, in words (null after a success).</summary>
    public string? LastError { get; private set; }

    /// <summary>The buffer's counters: keys requested, received, taken, rejected by reason, wasted; failed fetches.</summary>
    public KeyPrefetchCounters Counters
    {
        get
        {
            lock (_lock)
            {
                return new KeyPrefetchCounters(_requested, _received, _taken, _fetchFailures, _wasted, new Dictionary<string, long>(_rejected, StringComparer.Ordinal), _late);
            }
        }
    }

    /// <summary>Starts the first fill.</summary>
    public void Start() => Pump();

    /// <summary>Takes the oldest buffered key; the caller owns (and disposes) it.</summary>
    public bool TryTake(out EtsiKey key)
    {
        bool got;
        lock (_lock)
        {
            _takes.Enqueue(_time.GetTimestamp());
            got = _keys.TryDequeue(out var k);
            key = k!;
            if (got)
            {
                _taken++;
            }
        }
        Pump();
        return got;
    }

    private int Target()
    {
        var now = _time.GetTimestamp();
        while (_takes.Count > 0 && _time.GetElapsedTime(_takes.Peek(), now) > _options.DemandWindow)
        {
            _takes.Dequeue();
        }
        var perSecond = _takes.Count / _options.DemandWindow.TotalSeconds;
        var wanted = (int)Math.Ceiling(perSecond * _options.Horizon.TotalSeconds - 1e-9);
        return Math.Clamp(wanted, _options.MinDepth, _options.MaxDepth);
    }

    private void Pump()
    {
        while (true)
        {
            int n;
            lock (_lock)
            {
                if (_disposed || _fetching || _backingOff)
                {
                    return;
                }
                var need = Target() - _keys.Count;
                if (need <= 0)
                {
                    return;
                }
                n = Math.Min(need, _requestCap);
                _fetching = true;
                _requested += n;
            }
            var fetch = FetchOnceAsync(n);
            if (!fetch.IsCompleted)
            {
                _ = fetch.ContinueWith(_ => Pump(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                return;
            }
        }
    }

    private async Task FetchOnceAsync(int n)
    {
        EtsiResult<KeyContainer>? result = null;
        string? thrown = null;
        try
        {
            result = await _fetch(n, _stop.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Whatever the fetcher throws (reset mid-body, TLS, a disposed client, a bug) is one
            // failed fetch: the buffer backs off and asks again, it never stops asking.
            thrown = ex.GetType().Name + ": " + ex.Message;
        }
        List<(string Reason, int Count)>? rejections = null;
        lock (_lock)
        {
            _fetching = false;
            LastResult = result?.Kind ?? EtsiResultKind.TransportFailure;
            var keys = result?.Value?.Keys ?? [];
            _received += keys.Count;
            if (_disposed)
            {
                keys.ForEach(k => k.Dispose());
                return;
            }
            int accepted = Accept(keys, ref rejections);
            if (result is { Kind: EtsiResultKind.NoKeyNow } || rejections is not null)
            {
                // A KME that serves a request whole or not at all (ours answers 503 and takes
                // nothing) would never hand over its last few keys, and one that serves unusable
                // keys should lose as few as possible: ask for fewer next time.
                _requestCap = Math.Max(1, Math.Min(n, _requestCap) / 2);
            }
            if (result is { Kind: EtsiResultKind.Ok } && accepted > 0 && rejections is null)
            {
                _requestCap = Math.Min(_options.MaxPerRequest, _requestCap * 2);
                ConsecutiveFailures = 0;
                CurrentBackoff = TimeSpan.Zero;
                LastError = null;
                return;
            }
            LastError = thrown ?? (rejections is not null ? $"unusable keys ({string.Join(", ", rejections.Select(r => $"{r.Count} {r.Reason}"))})" : result?.ToString());
            BackOffLocked();
        }
        foreach (var (reason, count) in rejections ?? [])
        {
            _options.Rejected?.Invoke(reason, count);
        }
    }

    /// <summary>
    /// Keys of an answer that arrived after its fetch had already counted as failed (a timeout):
    /// the KME took them from its pool, so the usable ones are buffered (counted in
    /// <see cref="KeyPrefetchCounters.Late"/>) instead of lost; unusable ones are refused as in any
    /// answer. The backoff of the failed fetch stands. After <see cref="Dispose"/> they are zeroed.
    /// </summary>
    public void OfferLate(KeyContainer container)
    {
        ArgumentNullException.ThrowIfNull(container);
        List<(string Reason, int Count)>? rejections = null;
        lock (_lock)
        {
            _received += container.Keys.Count;
            if (_disposed)
            {
                container.Keys.ForEach(k => k.Dispose());
                return;
            }
            _late += Accept(container.Keys, ref rejections);
        }
        foreach (var (reason, count) in rejections ?? [])
        {
            _options.Rejected?.Invoke(reason, count);
        }
    }

    /// <summary>Buffers the usable keys of one answer, zeroes and counts the others; returns how many were buffered.</summary>
    private int Accept(List<EtsiKey> keys, ref List<(string Reason, int Count)>? rejections)
    {
        int accepted = 0;
        foreach (var key in keys)
        {
            if (_options.KeyCheck?.Invoke(key) is { } reason)
            {
                key.Dispose();
                _rejected[reason] = _rejected.GetValueOrDefault(reason) + 1;
                rejections ??= [];
                int at = rejections.FindIndex(r => r.Reason == reason);
                if (at < 0)
                {
                    rejections.Add((reason, 1));
                }
                else
                {
                    rejections[at] = (reason, rejections[at].Count + 1);
                }
                continue;
            }
            _keys.Enqueue(key);
            accepted++;
        }
        return accepted;
    }

    private void BackOffLocked()
    {
        _fetchFailures++;
        ConsecutiveFailures++;
        CurrentBackoff = CurrentBackoff == TimeSpan.Zero
            ? _options.InitialBackoff
            : TimeSpan.FromTicks(Math.Min(CurrentBackoff.Ticks * 2, _options.MaxBackoff.Ticks));
        _backingOff = true;
        _backoffTimer?.Dispose();
        _backoffTimer = _time.CreateTimer(_ => EndBackoff(), null, CurrentBackoff, Timeout.InfiniteTimeSpan);
    }

    private void EndBackoff()
    {
        lock (_lock)
        {
            _backingOff = false;
        }
        Pump();
    }

    /// <summary>Stops refills and zeroes every buffered key.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            _backoffTimer?.Dispose();
            while (_keys.TryDequeue(out var key))
            {
                _wasted++;
                key.Dispose();
            }
        }
        _stop.Cancel();
        _stop.Dispose();
    }
}

/// <summary>A <see cref="KeyPrefetchBuffer"/>'s counters.</summary>
/// <param name="Requested">Keys asked for.</param>
/// <param name="Received">Keys the KME's answers carried.</param>
/// <param name="Taken">Keys handed to the engine.</param>
/// <param name="FetchFailures">Fetches that failed (each one backed off).</param>
/// <param name="Wasted">Usable keys zeroed unused (still buffered at shutdown).</param>
/// <param name="Rejected">Unusable keys by reason.</param>
/// <param name="Late">Usable keys kept from answers that arrived after their call timed out.</param>
public sealed record KeyPrefetchCounters(long Requested, long Received, long Taken, long FetchFailures, long Wasted, IReadOnlyDictionary<string, long> Rejected, long Late = 0);
