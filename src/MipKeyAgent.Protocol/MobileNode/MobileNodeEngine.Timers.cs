namespace MipKeyAgent.Protocol.MobileNode;

public sealed partial class MobileNodeEngine
{
    /// <summary>
    /// When <see cref="Tick"/> has work next: the BA timer of the exchange in flight, else the
    /// earliest idle timer (key retry, rekey, binding refresh); and a key fetch's timer.
    /// </summary>
    public DateTimeOffset? NextDeadline
    {
        get
        {
            var next = _exchange.InFlight ? _exchange.DueAt : Earlier(Earlier(_keyRetry?.At, RekeyDueAt), _refreshAt);
            return Earlier(next, _fetch?.DueAt);
        }
    }

    /// <summary>Runs the timer that expired: BA timeout (retransmit or re-initialize), key retry, rekey or binding refresh.</summary>
    public void Tick()
    {
        var now = _time.GetUtcNow();
        TickKeyFetch(now);
        if (ExpiredTimer(now) is not { } expired)
        {
            return;
        }
        if (expired is MobileNodeEvent.KeyRetryDue or MobileNodeEvent.InitRetryDue)
        {
            // One-shot: it starts the exchange that asks again.
            _keyRetry = null;
        }
        Handle(expired);
    }

    /// <summary>The rekey timer while it may run (explicit mode, N held, no key being fetched), else null.</summary>
    private DateTimeOffset? RekeyDueAt => RekeyArmed ? _rekeyDueAt : null;

    /// <summary>
    /// The one timer that fires now: the exchange's BA timer while an exchange is in flight, else
    /// the first due of key retry, rekey and refresh (in that order); null when none is due.
    /// </summary>
    private MobileNodeEvent? ExpiredTimer(DateTimeOffset now)
    {
        if (_exchange.InFlight)
        {
            return now < _exchange.DueAt ? null
                : _exchange.Retransmissions >= (Faulty(MobileNodeFaults.ReinitTooEarly) ? 1 : _options.MaxUnansweredRetransmissions)
                    ? MobileNodeEvent.RetransmissionsExhausted
                : MobileNodeEvent.BindAckTimeout;
        }
        if (_keyRetry is { } retry && retry.At <= now)
        {
            return retry.Kind == BindingUpdateKind.Init ? MobileNodeEvent.InitRetryDue : MobileNodeEvent.KeyRetryDue;
        }
        if (RekeyDueAt <= now)
        {
            return MobileNodeEvent.RekeyDue;
        }
        return _refreshAt <= now ? MobileNodeEvent.RefreshDue : null;
    }

    /// <summary>No BA in time: the exchange's BU again as <paramref name="kind"/> (new BU and ESP sequence numbers).</summary>
    private void RetransmitExchange(BindingUpdateKind kind)
    {
        _exchange = _exchange.Retransmitted(kind, _time.GetUtcNow(),
            Faulty(MobileNodeFaults.FixedRetransmissionTimer) ? _options.InitialBindAckTimeout : _options.MaxBindAckTimeout);
        if (kind == BindingUpdateKind.Init && Faulty(MobileNodeFaults.InitRetransmitNewEpoch))
        {
            NewInitEpoch();
        }
        Counters.Retransmissions++;
        if (kind == BindingUpdateKind.Resend)
        {
            Counters.Resends++;
        }
        ushort sequence = SendBindingUpdate(kind);
        Raise(ProtocolEventKind.Retransmitted, _ring.Newest, sequence);
    }

    private static DateTimeOffset? Earlier(DateTimeOffset? a, DateTimeOffset? b) => a is not { } x ? b : b is not { } y ? x : x < y ? x : y;
}
