using System.Data.Common;

namespace MipKeyAgent.Store.Postgres;

/// <summary>The lease: taken at open (a standby waits for it), renewed by its keeper, released at a clean stop.</summary>
public sealed partial class PostgresBindingStore
{
    private static readonly TimeSpan ExpiryMargin = TimeSpan.FromMilliseconds(20);

    private PostgresLease TakeLease(LeaseOptions options, Action<LeaseState?>? waiting, CancellationToken cancellationToken)
    {
        var poll = TimeSpan.FromTicks(Math.Clamp(options.Duration.Ticks / 4, TimeSpan.TicksPerMillisecond * 50, TimeSpan.TicksPerSecond));
        while (true)
        {
            LeaseState? held = null;
            try
            {
                if (Run("taking the lease", c => PostgresLease.TryTake(c, options.Name, options.Holder, options.Duration)) is { } taken)
                {
                    return taken;
                }
                held = Run("reading the lease", c => PostgresLease.Read(c, options.Name));
            }
            catch (BindingStoreException) when (options.Wait)
            {
                // A standby keeps waiting through a database outage (Health says why).
            }
            if (!options.Wait)
            {
                throw new BindingStoreException(held is { } h
                    ? $"the lease '{options.Name}' of '{Url.Text}' is held by {h.Holder} (token {h.Token}) for another {h.Remaining.TotalSeconds:F1} s: start this HA as a standby (--standby) to wait for it"
                    : $"the lease '{options.Name}' of '{Url.Text}' could not be taken");
            }
            var readAt = System.Diagnostics.Stopwatch.GetTimestamp();
            if (held is not null)
            {
                try
                {
                    // The standby's copy: the rows changed since its last read, authenticated now rather than after the takeover.
                    RefreshWhileWaiting();
                }
                catch (BindingStoreException)
                {
                    // The database went away meanwhile (Health says why), or a row does not open: the read after the takeover says which.
                }
            }
            waiting?.Invoke(held);
            // Try again just after the lease as read expires (its remaining time is the database's, so no clock of ours matters),
            // else at the next poll: a killed active's lease is taken within a few tens of milliseconds of its expiry.
            var wait = held is { } lease ? TimeSpan.FromTicks(Math.Clamp(lease.Remaining.Ticks + ExpiryMargin.Ticks, ExpiryMargin.Ticks, poll.Ticks)) : poll;
            wait -= System.Diagnostics.Stopwatch.GetElapsedTime(readAt);
            if (wait < ExpiryMargin)
            {
                wait = ExpiryMargin;
            }
            if (cancellationToken.WaitHandle.WaitOne(wait))
            {
                cancellationToken.ThrowIfCancellationRequested();
            }
        }
    }

    /// <summary>Renews the lease (the host, at a third of its duration); false when it is lost: the HA must stop answering.</summary>
    /// <remarks>
    /// Not under the store's lock (a group may be open), on a connection of its own. Its UPDATE changes no key column, so it
    /// does not wait for the open group's FOR KEY SHARE lock of the lease row (only a takeover's FOR UPDATE does).
    /// </remarks>
    public bool RenewLease()
    {
        var lease = Lease ?? throw new InvalidOperationException("this store holds no lease");
        return Run("renewing the lease", lease.TryRenew);
    }

    /// <summary>The lease row as the database has it now (status), or null without a lease.</summary>
    public LeaseState? ReadLease()
    {
        if (Lease is not { } lease)
        {
            return null;
        }
        // A connection of its own, as the renewal's (no lock: status never waits for a group).
        return Run("reading the lease", c => PostgresLease.Read(c, lease.Name));
    }

    /// <summary>Ends the lease (a standby takes over without waiting for its expiry); the store stays usable for reads.</summary>
    public void ReleaseLease()
    {
        if (Lease is not { } lease)
        {
            return;
        }
        lock (_lock)
        {
            Run("releasing the lease", lease.Release);
        }
    }
}
