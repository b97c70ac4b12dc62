using MipKeyAgent.Wire;

namespace MipKeyAgent.Protocol.HomeAgent;

/// <summary>
/// Token buckets per node (home address) for authenticated packets under initialization keys
/// (<see cref="InitRateLimit"/>). Time comes from the engine's <see cref="TimeProvider"/>; the table
/// is bounded (idle buckets go first, then everything).
/// </summary>
internal sealed class InitRateLimiter(InitRateLimit limit, TimeProvider time)
{
    private readonly Dictionary<Ipv6Address, Bucket> _buckets = [];

    public int TrackedSources => _buckets.Count;

    /// <summary>Takes one token for <paramref name="source"/> (a node's home address); false when its bucket is empty.</summary>
    public bool TryTake(Ipv6Address source)
    {
        var now = time.GetUtcNow();
        if (!_buckets.TryGetValue(source, out var bucket))
        {
            if (_buckets.Count >= limit.MaxSources)
            {
                Evict(now);
            }
            bucket = new Bucket(new TokenBucket(limit.Burst), now);
        }
        _buckets[source] = new Bucket(bucket.Tokens.Take((now - bucket.Updated).TotalSeconds, limit.Burst, limit.RequestsPerSecond, out bool allowed), now);
        return allowed;
    }

    private void Evict(DateTimeOffset now)
    {
        foreach (var (source, bucket) in _buckets)
        {
            if (bucket.Tokens.Refilled((now - bucket.Updated).TotalSeconds, limit.Burst, limit.RequestsPerSecond) >= limit.Burst)
            {
                _buckets.Remove(source);
            }
        }
        if (_buckets.Count >= limit.MaxSources)
        {
            _buckets.Clear();
        }
    }

    private readonly record struct Bucket(TokenBucket Tokens, DateTimeOffset Updated);
}
