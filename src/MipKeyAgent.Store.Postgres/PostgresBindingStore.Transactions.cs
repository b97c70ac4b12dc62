using System.Data.Common;

namespace MipKeyAgent.Store.Postgres;

/// <summary>Groups and transactions: every write checks the fencing token in its own transaction or the open group's.</summary>
public sealed partial class PostgresBindingStore
{
    /// <summary>Starts one transaction (with the fencing check) that the writes until <see cref="CommitGroup"/> share.</summary>
    public void BeginGroup()
    {
        lock (_lock)
        {
            if (_group is not null)
            {
                throw new InvalidOperationException("a group is already open");
            }
            NpgsqlConnection? connection = null;
            try
            {
                connection = _source.OpenConnection();
                var transaction = connection.BeginTransaction();
                Lease?.Check(connection, transaction, Url.Text);
                _group = new Group(connection, transaction);
                Healthy();
            }
            catch (Exception e) when (e is DbException or TimeoutException or IOException)
            {
                connection?.Dispose();
                throw Failed("starting a group", e);
            }
            catch
            {
                connection?.Dispose();
                throw;
            }
        }
    }

    /// <summary>Commits the group's transaction; throws <see cref="BindingStoreException"/> when any of its writes or the commit failed.</summary>
    public void CommitGroup()
    {
        lock (_lock)
        {
            var group = _group ?? throw new InvalidOperationException("no group is open");
            _group = null;
            using var connection = group.Connection;
            using var transaction = group.Transaction;
            if (group.Failure is { } failure)
            {
                throw new BindingStoreException($"the group's writes to '{Url.Text}' were not committed: {failure.Message}", failure);
            }
            try
            {
                group.SendPending();
                transaction.Commit();
                Healthy();
            }
            catch (Exception e) when (e is DbException or TimeoutException or IOException)
            {
                throw Failed("committing a group", e);
            }
            finally
            {
                group.DisposePending();
            }
        }
    }

    /// <summary>One write: in the open group's transaction, or in a transaction of its own committed before it returns.</summary>
    private void Write(string what, Ipv6Address? home, Action<NpgsqlConnection, NpgsqlTransaction> write)
    {
        if (_group is { } group)
        {
            if (group.Failure is not null)
            {
                throw new BindingStoreException($"{what} in '{Url.Text}' refused: an earlier write of this group failed ({group.Failure.Message})");
            }
            FenceInGroup(group, what, home);
            try
            {
                // The group's pending saves go first, so the writes reach the database in the order they were made.
                group.SendPending();
                write(group.Connection, group.Transaction);
            }
            catch (Exception e) when (e is DbException or TimeoutException or IOException or BindingStoreException)
            {
                group.Failure = e;
                throw e as BindingStoreException ?? Failed(what, e);
            }
            return;
        }
        Run(what, connection =>
        {
            using var transaction = connection.BeginTransaction();
            Fence(connection, transaction, home);
            write(connection, transaction);
            transaction.Commit();
            return true;
        });
    }

    /// <summary>
    /// With load sharing, a group's first write for a partition checks (and locks, until the group ends) that partition's lease in the
    /// group's transaction; a refusal fails the group. The single lease was checked when the group began.
    /// </summary>
    private void FenceInGroup(Group group, string what, Ipv6Address? home)
    {
        if (_partitionOptions is not { } options)
        {
            return;
        }
        int partition = home is { } node ? PostgresPartitions.Of(node, options.Count) : -1;
        if (!group.Fenced.Add(partition))
        {
            return;
        }
        try
        {
            group.SendPending();
            Fence(group.Connection, group.Transaction, home);
        }
        catch (Exception e) when (e is DbException or TimeoutException or IOException or BindingStoreException)
        {
            group.Fenced.Remove(partition);
            group.Failure ??= e;
            throw e as BindingStoreException ?? Failed(what, e);
        }
    }

    /// <summary>Runs <paramref name="call"/> on a pooled connection; a database failure becomes a <see cref="BindingStoreException"/>.</summary>
    private T Run<T>(string what, Func<NpgsqlConnection, T> call)
    {
        try
        {
            using var connection = _source.OpenConnection();
            T result = call(connection);
            Healthy();
            return result;
        }
        catch (Exception e) when (e is DbException or TimeoutException or IOException)
        {
            throw Failed(what, e);
        }
    }

    private void Run(string what, Action<NpgsqlConnection> call) => Run(what, c =>
    {
        call(c);
        return true;
    });

    private void Healthy()
    {
        if (!Health.Ok)
        {
            Health = new DatabaseHealth(true, null, _time.GetUtcNow());
        }
    }

    private BindingStoreException Failed(string what, Exception e)
    {
        if (Health.Ok)
        {
            Health = new DatabaseHealth(false, e.Message, _time.GetUtcNow());
        }
        else
        {
            Health = Health with { Error = e.Message };
        }
        return new BindingStoreException($"{what} in '{Url.Text}' failed: {e.Message}", e);
    }

    /// <summary>
    /// The open group's connection and transaction, its first failure (the transaction is then aborted), and the statements of
    /// its saves not sent yet: one batch, one round trip, sent before the group's next other write or its commit.
    /// </summary>
    private sealed class Group(NpgsqlConnection connection, NpgsqlTransaction transaction)
    {
        private NpgsqlBatch? _pending;

        public NpgsqlConnection Connection { get; } = connection;

        public NpgsqlTransaction Transaction { get; } = transaction;

        public Exception? Failure { get; set; }

        /// <summary>The partitions whose lease this group checked (-1: the writes of no node).</summary>
        public HashSet<int> Fenced { get; } = [];

        public NpgsqlBatch Pending() => _pending ??= new NpgsqlBatch(Connection, Transaction);

        /// <summary>Sends the pending statements (a failure is the group's: it throws, and nothing of the group commits).</summary>
        public void SendPending()
        {
            if (_pending is not { } pending)
            {
                return;
            }
            _pending = null;
            using (pending)
            {
                try
                {
                    pending.ExecuteNonQuery();
                }
                catch (Exception e)
                {
                    Failure ??= e;
                    throw;
                }
            }
        }

        public void DisposePending()
        {
            _pending?.Dispose();
            _pending = null;
        }
    }
}
