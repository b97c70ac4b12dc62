using MipKeyAgent.Protocol;
using MipKeyAgent.Protocol.Keys;
using Microsoft.Extensions.Logging;

namespace MipKeyAgent.Hosting;

/// <summary>
/// Drop log lines of an agent, rate-limited per reason (PROTOCOL.md section 8.10: never a line per
/// dropped datagram, so a flood cannot fill the disk). The first drop of a reason is logged as it
/// comes; later ones within <see cref="Interval"/> are counted, and one summary line per reason per
/// interval reports how many were suppressed (written by the next drop of that reason after the
/// interval, or by <see cref="Flush"/> at <see cref="NextDue"/>). The engine's drop counters stay
/// exact; this only decides what reaches the log. Runs on the agent loop (not thread-safe).
/// </summary>
internal sealed class DropLog(ILogger logger, TimeProvider time, TimeSpan? interval = null)
{
    private readonly Reason[] _reasons = new Reason[Enum.GetValues<DropReason>().Length];

    /// <summary>At most one line per reason per interval (default 1 s).</summary>
    public TimeSpan Interval { get; } = interval ?? TimeSpan.FromSeconds(1);

    /// <summary>When <see cref="Flush"/> has a summary to write, or null.</summary>
    public DateTimeOffset? NextDue
    {
        get
        {
            DateTimeOffset? due = null;
            foreach (var reason in _reasons)
            {
                if (reason.Suppressed > 0 && (due is null || reason.NextLineAt < due))
                {
                    due = reason.NextLineAt;
                }
            }
            return due;
        }
    }

    /// <summary>One dropped datagram from <paramref name="node"/> (a name, or "?" when no node is known).</summary>
    public void Record(string node, DropReason reason, Generation generation)
    {
        if (!logger.IsEnabled(LogLevel.Information))
        {
            return;
        }
        var now = time.GetUtcNow();
        ref var state = ref _reasons[(int)reason];
        if (state.Suppressed == 0 && now >= state.NextLineAt)
        {
            AgentLog.Dropped(logger, node, reason, generation);
            state.NextLineAt = now + Interval;
            return;
        }
        state.Suppressed++;
        state.LastNode = node;
        state.LastGeneration = generation;
        if (now >= state.NextLineAt)
        {
            Summarise(reason, ref state, now);
        }
    }

    /// <summary>Writes the summaries that are due (the host calls it at <see cref="NextDue"/> and when stopping).</summary>
    public void Flush(bool all = false)
    {
        var now = time.GetUtcNow();
        for (int i = 0; i < _reasons.Length; i++)
        {
            ref var state = ref _reasons[i];
            if (state.Suppressed > 0 && (all || now >= state.NextLineAt))
            {
                Summarise((DropReason)i, ref state, now);
            }
        }
    }

    private void Summarise(DropReason reason, ref Reason state, DateTimeOffset now)
    {
        AgentLog.DropsSuppressed(logger, state.Suppressed, reason, state.LastNode ?? "?", state.LastGeneration, Interval.TotalSeconds);
        state.Suppressed = 0;
        state.LastNode = null;
        state.NextLineAt = now + Interval;
    }

    private struct Reason
    {
        public DateTimeOffset NextLineAt;
        public long Suppressed;
        public string? LastNode;
        public Generation LastGeneration;
    }
}
