using Microsoft.Extensions.Logging;

namespace MipKeyAgent.Hosting;

/// <summary>
/// A home agent without its store's database (docs/cluster.md, "Without its database"). The store is down from the
/// first group that cannot begin or commit until one begins again. Meanwhile the loop runs no engine work: received
/// datagrams are dropped and counted (nothing could be made durable, so nothing is answered), timers wait, and a group
/// is tried again every <see cref="RetryInterval"/>. A failed commit leaves the engine's state ahead of the store: the
/// first group after the outage reloads the engine from the store (<see cref="Resume"/>) before anything is answered.
/// One log line when the store goes down, one when it returns (with the datagrams left unanswered).
/// </summary>
internal sealed partial class StoreOutage(ILogger logger, TimeProvider time, Action reloadEngine)
{
    /// <summary>How often a group is tried while the store is down.</summary>
    public static readonly TimeSpan RetryInterval = TimeSpan.FromMilliseconds(500);

    private long _dropped;
    private long _droppedTotal;
    private long _outages;
    private volatile bool _down;

    /// <summary>No group can begin: the loop runs no engine work.</summary>
    public bool Down => _down;

    /// <summary>A failed commit (or a failed reload) left the engine ahead of the store: it is reloaded before it runs again.</summary>
    public bool EngineAhead { get; private set; }

    /// <summary>When the next group is tried (while <see cref="Down"/>).</summary>
    public DateTimeOffset RetryAt { get; private set; }

    /// <summary>Datagrams dropped unanswered while the store was down, over the process's life.</summary>
    public long DroppedTotal => Interlocked.Read(ref _droppedTotal);

    /// <summary>How many times the store went down.</summary>
    public long Outages => Interlocked.Read(ref _outages);

    private DateTimeOffset _since;

    /// <summary>True while down and the next try is not due yet: the loop begins no group this turn.</summary>
    public bool Waiting(DateTimeOffset now) => _down && now < RetryAt;

    /// <summary>A group could not begin or commit (<paramref name="engineAhead"/>: its writes were lost while the engine kept them).</summary>
    public void Failed(Exception error, int unsent, bool engineAhead)
    {
        var now = time.GetUtcNow();
        EngineAhead |= engineAhead;
        RetryAt = now + RetryInterval;
        if (_down)
        {
            return;
        }
        _down = true;
        _since = now;
        _dropped = 0;
        Interlocked.Increment(ref _outages);
        Log.Down(logger, unsent, error.Message);
    }

    /// <summary>A datagram left unanswered while the store is down.</summary>
    public void Dropped()
    {
        _dropped++;
        Interlocked.Increment(ref _droppedTotal);
    }

    /// <summary>
    /// A group began after the outage (the loop holds it open): reloads the engine when it is ahead of the store, then
    /// answering resumes. False when the reload failed (the store went down again; the caller ends the group).
    /// </summary>
    public bool Resume()
    {
        if (!_down && !EngineAhead)
        {
            return true;
        }
        bool reload = EngineAhead;
        if (reload)
        {
            try
            {
                reloadEngine();
            }
            catch (Exception e)
            {
                Failed(e, 0, engineAhead: true);
                return false;
            }
            EngineAhead = false;
        }
        if (_down)
        {
            _down = false;
            Log.Back(logger, (time.GetUtcNow() - _since).TotalSeconds, _dropped, reload ? "; the bindings were reloaded from the store" : "");
        }
        return true;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 25, Level = LogLevel.Error,
            Message = "the store is unavailable ({Error}); {Unsent} answer(s) not sent. Nothing is answered until it returns " +
                "(Binding Updates go unanswered: the nodes retransmit them); a group is tried every 0.5 s")]
        public static partial void Down(ILogger logger, int unsent, string error);

        [LoggerMessage(EventId = 26, Level = LogLevel.Warning,
            Message = "the store is available again after {Seconds:F1} s; {Dropped} datagram(s) went unanswered meanwhile{Reloaded}; answering resumes")]
        public static partial void Back(ILogger logger, double seconds, long dropped, string reloaded);
    }
}
