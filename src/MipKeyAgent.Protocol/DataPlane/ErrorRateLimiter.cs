namespace MipKeyAgent.Protocol.DataPlane;

/// <summary>
/// RFC 4443 section 2.4 (f): a node MUST limit the rate of the ICMPv6 errors it originates. A
/// token bucket (section 2.4 (f) names it as a suitable method): <see cref="Burst"/> errors at
/// once, then <see cref="PerSecond"/> a second. Time comes from the injected provider.
/// </summary>
internal sealed class ErrorRateLimiter
{
    private readonly TimeProvider _time;
    private TokenBucket _bucket;
    private long _lastTimestamp;

    public ErrorRateLimiter(TimeProvider time, int burst = 10, int perSecond = 10)
    {
        ArgumentNullException.ThrowIfNull(time);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(burst);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(perSecond);
        _time = time;
        Burst = burst;
        PerSecond = perSecond;
        _bucket = new TokenBucket(burst);
        _lastTimestamp = time.GetTimestamp();
    }

    public int Burst { get; }

    public int PerSecond { get; }

    /// <summary>Takes a token when one is there.</summary>
    public bool TryTake()
    {
        long now = _time.GetTimestamp();
        double elapsed = _time.GetElapsedTime(_lastTimestamp, now).TotalSeconds;
        _lastTimestamp = now;
        _bucket = _bucket.Take(elapsed, Burst, PerSecond, out bool taken);
        return taken;
    }
}
