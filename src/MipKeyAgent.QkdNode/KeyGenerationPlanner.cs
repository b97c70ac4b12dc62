namespace MipKeyAgent.QkdNode;

/// <summary>
/// How many keys to generate and share with each correspondent KME, and when (design
/// source: the control unit changes the generation/sharing frequency according to the
/// session information). Rate toward a peer = total requested throughput of its starting
/// and connected sessions, capped by the link key rate; zero when it has none.
/// Starting sessions count too: sharing begins on the start request (S110) and is what
/// lets a session become connected. Pure: time comes from the injected TimeProvider.
/// </summary>
internal sealed class KeyGenerationPlanner
{
    private readonly TimeProvider _time;
    private readonly SessionTable _sessions;
    private readonly double _linkKeyRate;
    private readonly Dictionary<string, PeerCredit> _peers = new(StringComparer.Ordinal);

    public KeyGenerationPlanner(TimeProvider time, SessionTable sessions, double linkKeyRate, IEnumerable<string> peerKmeIds)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(linkKeyRate);
        _time = time;
        _sessions = sessions;
        _linkKeyRate = linkKeyRate;
        var now = time.GetTimestamp();
        foreach (var peer in peerKmeIds)
        {
            _peers[peer] = new PeerCredit { LastTimestamp = now };
        }
    }

    public double LinkKeyRate => _linkKeyRate;

    public IEnumerable<string> Peers => _peers.Keys;

    /// <summary>Keys per second toward <paramref name="peerKmeId"/> given the sessions now.</summary>
    public double RateFor(string peerKmeId)
    {
        var demand = _sessions.DemandFor(peerKmeId);
        return demand.ActiveSessions == 0 ? 0 : Math.Min(demand.RequestedThroughput, _linkKeyRate);
    }

    /// <summary>
    /// Keys due toward <paramref name="peerKmeId"/> since the last call, at the current
    /// rate, at most <paramref name="room"/> (space left in the pool). Fractions carry over
    /// between calls so slow rates are honoured exactly; credit is not banked while the
    /// pool is full or the rate is zero.
    /// </summary>
    public int TakeDue(string peerKmeId, int room)
    {
        var credit = _peers[peerKmeId];
        var now = _time.GetTimestamp();
        var elapsed = _time.GetElapsedTime(credit.LastTimestamp, now).TotalSeconds;
        credit.LastTimestamp = now;
        var rate = RateFor(peerKmeId);
        credit.CurrentRate = rate;
        if (rate <= 0 || room <= 0)
        {
            credit.Fraction = 0;
            return 0;
        }
        var exact = credit.Fraction + rate * elapsed;
        // The epsilon absorbs binary rounding of rate * elapsed (10 x 0.1 s must make 1 s).
        var due = (int)Math.Min(Math.Floor(exact + 1e-9), room);
        exact = Math.Max(exact, due);
        credit.Fraction = due == room ? 0 : exact - due;
        credit.Generated += due;
        return due;
    }

    /// <summary>The rate used by the last <see cref="TakeDue"/> for this peer.</summary>
    public double CurrentRate(string peerKmeId) => _peers[peerKmeId].CurrentRate;

    public long Generated(string peerKmeId) => _peers[peerKmeId].Generated;

    private sealed class PeerCredit
    {
        public long LastTimestamp;
        public double Fraction;
        public double CurrentRate;
        public long Generated;
    }
}
