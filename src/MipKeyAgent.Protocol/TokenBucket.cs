namespace MipKeyAgent.Protocol;

/// <summary>
/// A token bucket: up to a burst of tokens at once, refilled at a steady rate. The data planes use
/// one for the ICMPv6 errors they originate (RFC 4443 section 2.4 (f) names it as a suitable
/// method), the home agent one per node for packets under initialization keys.
/// </summary>
internal readonly record struct TokenBucket(double Tokens)
{
    /// <summary>The tokens after <paramref name="elapsedSeconds"/> more at <paramref name="perSecond"/>, at most <paramref name="burst"/>.</summary>
    public double Refilled(double elapsedSeconds, double burst, double perSecond) =>
        Math.Min(burst, Tokens + (Math.Max(0, elapsedSeconds) * perSecond));

    /// <summary>The bucket refilled over <paramref name="elapsedSeconds"/>, less one token when there is one (<paramref name="taken"/>).</summary>
    public TokenBucket Take(double elapsedSeconds, double burst, double perSecond, out bool taken)
    {
        double tokens = Refilled(elapsedSeconds, burst, perSecond);
        taken = tokens >= 1;
        return new TokenBucket(taken ? tokens - 1 : tokens);
    }
}
