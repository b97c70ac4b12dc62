using System.Globalization;
using MipKeyAgent.Protocol.MobileNode;

namespace MipKeyAgent.Store;

/// <summary>
/// The marks of an MN store that must never go down while the node keeps its state: the Init
/// Epoch (PROTOCOL.md section 6: a lower one makes the HA drop the node's inits), IK's outbound
/// sequence reservation, and within one epoch the outbound reservations of the generations held
/// and the highest generation installed (a copy holding a generation the node dropped since would
/// resume its counters below what was sent). Generation numbers restart only with a new epoch (a
/// re-initialization), so they are compared within an epoch only. The BU sequence number is not a
/// mark: it wraps (RFC 6275 section 9.5.1) and the HA answers a stale one with a resync.
/// </summary>
internal readonly record struct MobileNodeMarks(ulong Epoch, uint IkReserved, HeldReservation Newest, HeldReservation Previous, uint HighestInstalled)
{
    /// <summary><see cref="AnchorEntry.Kind"/> values of the MN's anchor log.</summary>
    public const byte StateKind = 16, HighestKind = 17;

    public static MobileNodeMarks Of(MobileNodeState state, MobileNodeKeys? keys, MobileNodeMarks before)
    {
        var newest = HeldReservation.Of(keys?.Newest);
        var previous = HeldReservation.Of(keys?.Previous);
        uint highest = Math.Max(newest.Generation, previous.Generation);
        return new(state.InitEpoch, state.InitializationSequenceReserved, newest, previous,
            state.InitEpoch == before.Epoch ? Math.Max(before.HighestInstalled, highest) : highest);
    }

    public bool IsEmpty => this == default;

    /// <summary>The first mark where <paramref name="database"/> is below this (anchored) one, described for an error; null when none.</summary>
    public string? FirstRollback(MobileNodeMarks database)
    {
        if (database.Epoch < Epoch)
        {
            return Text($"Init Epoch: {database.Epoch} in the database, {Epoch} anchored");
        }
        if (database.IkReserved < IkReserved)
        {
            return Text($"IK sequence reservation: {database.IkReserved} in the database, {IkReserved} anchored");
        }
        if (database.Epoch != Epoch)
        {
            return null;
        }
        var anchored = new BindingMarks(HighestInstalled, Newest, Previous);
        foreach (var held in new BindingMarks(0, database.Newest, database.Previous).Held())
        {
            if (anchored.TryGetReserved(held.Generation, out uint reserved))
            {
                if (held.Reserved < reserved)
                {
                    return Text($"sequence reservation of g{held.Generation}: {held.Reserved} in the database, {reserved} anchored");
                }
            }
            else if (held.Generation <= HighestInstalled)
            {
                return Text($"g{held.Generation} held in the database, dropped for g{HighestInstalled} (anchored)");
            }
        }
        return null;
    }

    public AnchorEntry StateEntry => new(StateKind, Epoch, IkReserved, Newest.Generation, Newest.Reserved, Previous.Generation, Previous.Reserved);

    public AnchorEntry HighestEntry => new(HighestKind, Epoch, HighestInstalled);

    /// <summary>Replays one record of the anchor log onto these marks.</summary>
    public MobileNodeMarks Apply(in AnchorEntry entry) => entry.Kind switch
    {
        StateKind => Of((ulong)entry.Key, entry.V0, new(entry.V1, entry.V2), new(entry.V3, entry.V4)),
        HighestKind when (ulong)entry.Key == Epoch => this with { HighestInstalled = Math.Max(HighestInstalled, entry.V0) },
        HighestKind => this,
        _ => throw new FormatException($"unknown anchor record kind {entry.Kind}"),
    };

    private MobileNodeMarks Of(ulong epoch, uint ik, HeldReservation newest, HeldReservation previous)
    {
        uint highest = Math.Max(newest.Generation, previous.Generation);
        return new(epoch, ik, newest, previous, epoch == Epoch ? Math.Max(HighestInstalled, highest) : highest);
    }

    private static string Text(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// An open MN store's rollback anchor: as the HA's <see cref="RollbackGuard"/>, over
/// <see cref="MobileNodeMarks"/>. Each <see cref="Saved"/> that moves a mark appends one record.
/// </summary>
internal sealed class MobileNodeRollbackGuard : IDisposable
{
    private readonly AnchorLog _log;
    private MobileNodeMarks _marks;

    private MobileNodeRollbackGuard(AnchorLog log, MobileNodeMarks marks)
    {
        _log = log;
        _marks = marks;
    }

    public string Path => _log.Path;

    /// <summary>What the open did that belongs in the operator's log, or null.</summary>
    public string? Notice { get; private set; }

    /// <summary>Records in the anchor log now.</summary>
    internal long LogRecords => _log.Records;

    /// <summary>
    /// Refuses a database older than the anchor, or one that was anchored and lost its anchor, unless
    /// <paramref name="acceptRollback"/>: then the Init Epoch and IK reservation are raised to the
    /// anchored ones and the stored generations dropped (the node re-initializes, under a newer epoch).
    /// A store that was never anchored is anchored as it is, with a <see cref="Notice"/>.
    /// </summary>
    public static MobileNodeRollbackGuard Check(AnchorLog log, bool acceptRollback, StoreConnection db, SqliteMobileNodeStateStore store)
    {
        try
        {
            string? notice = null;
            var (state, keys) = store.LoadAll();
            var database = MobileNodeMarks.Of(state, keys, default);
            keys?.ZeroSecrets();
            var anchored = ReadAnchor(log, ref notice);
            bool wasAnchored = StoreMeta.IsAnchored(db);
            notice = RollbackGuard.CheckAnchorPresent(db, log, anchored is not null, database.IsEmpty, acceptRollback) ?? notice;
            if (anchored is { } a && a.FirstRollback(database) is { } what)
            {
                if (!acceptRollback)
                {
                    throw new BindingStoreException(
                        $"'{db.Path}' is older than its rollback anchor '{log.Path}' ({what}): the database was replaced by an older copy " +
                        "(a restored backup?), and starting from it could reuse GCM IVs or an Init Epoch. Restore the latest database, or " +
                        "start once with --accept-store-rollback to raise the Init Epoch and IK reservation to the anchored values and " +
                        "drop the stored keys (the node re-initializes)");
                }
                state = state with
                {
                    InitEpoch = Math.Max(state.InitEpoch, a.Epoch),
                    InitializationSequenceReserved = Math.Max(state.InitializationSequenceReserved, a.IkReserved),
                };
                store.Save(state, null);
                database = MobileNodeMarks.Of(state, null, default);
            }
            log.Rewrite([database.StateEntry, database.HighestEntry]);
            if (!wasAnchored)
            {
                StoreMeta.MarkAnchored(db);
            }
            return new MobileNodeRollbackGuard(log, database) { Notice = notice };
        }
        catch
        {
            log.Dispose();
            throw;
        }
    }

    private static MobileNodeMarks? ReadAnchor(AnchorLog log, ref string? notice)
    {
        if (StoreAnchor.ReadFile(log.Path) is not { } content)
        {
            return null;
        }
        var read = log.Read(content);
        var marks = default(MobileNodeMarks);
        try
        {
            foreach (var entry in read.Entries)
            {
                marks = marks.Apply(entry);
            }
        }
        catch (FormatException e)
        {
            throw new BindingStoreException($"rollback anchor '{log.Path}': unreadable content", e);
        }
        if (read.TornTail)
        {
            notice = $"rollback anchor '{log.Path}': ignored a torn last record (a power loss during its append)";
        }
        return marks;
    }

    /// <summary>The state was committed: appends a record when a mark moved (one write), compacting a log that outgrew its bound.</summary>
    public void Saved(MobileNodeState state, MobileNodeKeys? keys)
    {
        var next = MobileNodeMarks.Of(state, keys, _marks);
        if (next == _marks)
        {
            return;
        }
        _marks = next;
        _log.Add(next.StateEntry);
        _log.Flush();
        if (_log.Records > RollbackGuard.DefaultCompactionFloor)
        {
            _log.Rewrite([next.StateEntry, next.HighestEntry]);
        }
    }

    public void Dispose() => _log.Dispose();
}
