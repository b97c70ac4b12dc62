namespace MipKeyAgent.Hosting;

/// <summary>Group commit: what the engine sends during a store group is held until the group is durable.</summary>
internal sealed partial class AgentLoop
{
    /// <summary>True when <paramref name="datagram"/> was kept for the end of the open group.</summary>
    private bool Hold(ReadOnlySpan<byte> datagram)
    {
        if (_batch is not null)
        {
            // Only the loop's thread runs the engine; the send batch keeps its datagrams until the commit
            // unless it would have to flush itself (full, or a datagram longer than a slot): those wait here.
            if (!_grouping || Environment.CurrentManagedThreadId != _loopThread
                || (_held.Count == 0 && _batch.Count < _batch.Capacity && datagram.Length <= _batch.SlotLength))
            {
                return false;
            }
            _held.Add(datagram.ToArray());
            return true;
        }
        lock (_held)
        {
            if (!_grouping)
            {
                return false;
            }
            _held.Add(datagram.ToArray());
            return true;
        }
    }

    private void BeginGroup()
    {
        if (_store is null)
        {
            return;
        }
        _store.BeginGroup();
        if (_batch is null)
        {
            lock (_held)
            {
                _grouping = true;
            }
        }
        else
        {
            _grouping = true;
        }
    }

    /// <summary>
    /// Commits the open group, then lets its sends go (on the batched loop: flushes the send batch). When the
    /// commit throws, they are dropped and the failure is logged and rethrown.
    /// </summary>
    private void CommitGroup()
    {
        if (_store is null)
        {
            if (_batch is not null)
            {
                Flush(_batch);
            }
            return;
        }
        try
        {
            _store.CommitGroup();
        }
        catch (Exception e)
        {
            int held;
            lock (_held)
            {
                held = _held.Count + (_batch?.Count ?? 0);
                _held.Clear();
                _batch?.Clear();
                _grouping = false;
            }
            AgentLog.GroupCommitFailed(_logger, held, e);
            throw;
        }
        if (_batch is not null)
        {
            _grouping = false;
            Flush(_batch);
            foreach (var datagram in _held)
            {
                _batch.Add(datagram);
            }
            _held.Clear();
            Flush(_batch);
            return;
        }
        byte[][] release;
        lock (_held)
        {
            _grouping = false;
            if (_held.Count == 0)
            {
                return;
            }
            release = [.. _held];
            _held.Clear();
        }
        foreach (var datagram in release)
        {
            Send(datagram);
        }
    }
}
