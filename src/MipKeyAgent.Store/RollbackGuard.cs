using System.Globalization;

namespace MipKeyAgent.Store;

/// <summary>
/// An open HA store's rollback anchor (<see cref="StoreAnchor"/>) and the marks it last wrote. At open,
/// <see cref="Check"/> compares the database's marks with the anchored ones; afterwards each committed write
/// reports what it changed (<see cref="Saved"/>, <see cref="Removed"/>, ...) and the anchor is rewritten when a
/// mark moved, under the store's lock, after the commit and before the write returns to the engine.
/// </summary>
internal sealed class RollbackGuard
{
    private readonly StoreAnchor _anchor;
    private StoreMarks _marks;

    /// <summary>Inside a store's group of writes: the marks so far (written by <see cref="CommitGroup"/>), or null.</summary>
    private StoreMarks? _group;

    private bool _grouping;

    private RollbackGuard(StoreAnchor anchor, StoreMarks marks)
    {
        _anchor = anchor;
        _marks = marks;
    }

    /// <summary>The anchor file.</summary>
    public string Path => _anchor.Path;

    /// <summary>
    /// Refuses a database older than <paramref name="anchor"/>, or a non-empty one without it, unless
    /// <paramref name="acceptRollback"/>: then the database's reservations and highest generations are first raised
    /// to the anchored ones through <paramref name="store"/> (which keeps no guard yet, so those writes move no anchor).
    /// Writes the anchor when it is new or behind the database.
    /// </summary>
    public static RollbackGuard Check(StoreAnchor anchor, bool acceptRollback, StoreConnection db, SqliteBindingStore store)
    {
        var database = ReadMarks(db);
        var anchored = anchor.Read();
        if (anchored is null && !database.IsEmpty && !acceptRollback)
        {
            throw new BindingStoreException(
                $"'{db.Path}' holds state but its rollback anchor '{anchor.Path}' is missing (deleted, or a store written before anchors " +
                "existed): an older copy of the database would go unnoticed. Put the anchor back, or, if this database is the latest, " +
                "start once with --accept-store-rollback to anchor it");
        }
        if (anchored is not null && anchored.FirstRollback(database) is { } what)
        {
            if (!acceptRollback)
            {
                throw new BindingStoreException(
                    $"'{db.Path}' is older than its rollback anchor '{anchor.Path}' ({what}): the database was replaced by an older copy " +
                    "(a restored backup?), and starting from it could reuse GCM IVs, generation numbers and SPIs. Restore the latest " +
                    "database, or start once with --accept-store-rollback to raise every reservation and generation number to the " +
                    "anchored values (SPIs retired after the copy was taken may then be picked again)");
            }
            RaiseTo(anchored, database, store);
            database = ReadMarks(db);

            // The raised rows replace what the open kept.
            store.Reload();
        }
        if (anchored is null || !anchored.SameAs(database))
        {
            // A new anchor, the override's raised marks, or marks the database got after the last
            // anchor write (a crash between the commit and the anchor write): the database is newer, fine.
            anchor.Write(database);
        }
        return new RollbackGuard(anchor, database);
    }

    /// <summary>A binding was saved: its highest generation and the reservations of the generations it holds.</summary>
    public void Saved(string home, BindingRecord record) => Apply(marks =>
    {
        marks.HighestIssued[home] = record.HighestIssued.Value;
        ForgetGenerations(marks, home);
        foreach (var g in new[] { record.Newest, record.Previous })
        {
            if (g is not null)
            {
                marks.GenerationReserved[(home, g.Generation.Value)] = g.TransmitSequenceReserved;
            }
        }
    });

    /// <summary>The binding was deleted on purpose (provisioning): its marks go; the IK reservation stays.</summary>
    public void Removed(string home) => Apply(marks =>
    {
        marks.HighestIssued.Remove(home);
        ForgetGenerations(marks, home);
    });

    public void Reserved(string home, uint reserved) => Apply(marks => marks.IkReserved[home] = reserved);

    public void Retired(long count) => Apply(marks => marks.RetiredSpis = count);

    /// <summary>Every binding was forgotten; IK reservations and retired SPIs stay.</summary>
    public void BindingsLost() => Apply(marks =>
    {
        marks.HighestIssued.Clear();
        marks.GenerationReserved.Clear();
    });

    public static long CountRetired(StoreConnection db, SqliteTransaction? transaction = null)
    {
        using var command = db.Command("SELECT COUNT(*) FROM retired_spis", transaction);
        return Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// The store opened a group of writes: until <see cref="CommitGroup"/> the changes are collected and the anchor
    /// is not written (an anchor ahead of an uncommitted database would make it look rolled back at the next open).
    /// </summary>
    public void BeginGroup() => _grouping = true;

    /// <summary>The group's transaction is committed: the anchor is written once, when a mark moved.</summary>
    public void CommitGroup()
    {
        var next = _group;
        _group = null;
        _grouping = false;
        if (next is not null && !next.SameAs(_marks))
        {
            _anchor.Write(next);
            _marks = next;
        }
    }

    /// <summary>The group was rolled back: its changes are forgotten.</summary>
    public void AbandonGroup()
    {
        _group = null;
        _grouping = false;
    }

    /// <summary>Applies a change to the marks and rewrites the anchor when they moved (inside a group: collects it).</summary>
    private void Apply(Action<StoreMarks> change)
    {
        if (_grouping)
        {
            change(_group ??= _marks.Clone());
            return;
        }
        var next = _marks.Clone();
        change(next);
        if (next.SameAs(_marks))
        {
            return;
        }
        _anchor.Write(next);
        _marks = next;
    }

    private static void ForgetGenerations(StoreMarks marks, string home)
    {
        foreach (var key in marks.GenerationReserved.Keys.Where(k => k.Home == home).ToList())
        {
            marks.GenerationReserved.Remove(key);
        }
    }

    /// <summary>The marks as the database holds them (its rows were authenticated by the open).</summary>
    private static StoreMarks ReadMarks(StoreConnection db)
    {
        var marks = new StoreMarks { RetiredSpis = CountRetired(db) };
        ReadEach(db, "ik_reservations", ["reserved"], (home, v) => marks.IkReserved[home] = (uint)v[0]);
        ReadEach(db, "bindings", ["highest_issued"], (home, v) => marks.HighestIssued[home] = (uint)v[0]);
        ReadEach(db, "generations", ["generation", "transmit_reserved"], (home, v) => marks.GenerationReserved[(home, (uint)v[0])] = (uint)v[1]);
        return marks;
    }

    /// <summary>Each row's home_address and the integer <paramref name="columns"/> (ordinals resolved once per query).</summary>
    private static void ReadEach(StoreConnection db, string table, string[] columns, Action<string, long[]> row)
    {
        using var command = db.Command($"SELECT home_address, {string.Join(", ", columns)} FROM {table}");
        using var reader = command.ExecuteReader();
        int home = reader.GetOrdinal("home_address");
        int[] ordinals = [.. columns.Select(reader.GetOrdinal)];
        long[] values = new long[columns.Length];
        while (reader.Read())
        {
            for (int i = 0; i < ordinals.Length; i++)
            {
                values[i] = reader.GetInt64(ordinals[i]);
            }
            row(reader.GetString(home), values);
        }
    }

    /// <summary>
    /// The override: raises the database's IK reservations, highest generations and generation
    /// reservations to the anchored ones, and drops dynamic generations that were superseded after the copy.
    /// </summary>
    private static void RaiseTo(StoreMarks anchored, StoreMarks database, SqliteBindingStore store)
    {
        foreach (var (home, reserved) in anchored.IkReserved)
        {
            if (database.IkReserved.GetValueOrDefault(home) < reserved)
            {
                store.SaveInitializationSequenceReserved(Ipv6Address.Parse(home), reserved);
            }
        }
        foreach (string home in database.HighestIssued.Keys.ToList())
        {
            var record = store.Load(Ipv6Address.Parse(home))!;
            uint anchoredHighest = anchored.HighestIssued.GetValueOrDefault(home);
            // A generation the copy holds but the anchor does not, numbered at or below the anchored
            // highest, was dropped after the copy was taken: how far its counters went is unknown,
            // so the node's dynamic generations go (it re-initializes under IK, whose reservation is raised).
            bool stale = new[] { record.Newest, record.Previous }.Any(g => g is not null
                && !anchored.GenerationReserved.ContainsKey((home, g.Generation.Value)) && g.Generation.Value <= anchoredHighest);
            GenerationRecord? Raise(GenerationRecord? g) =>
                g is not null && anchored.GenerationReserved.TryGetValue((home, g.Generation.Value), out uint r) && r > g.TransmitSequenceReserved
                    ? g with { TransmitSequenceReserved = r }
                    : g;
            uint highest = Math.Max(record.HighestIssued.Value, anchoredHighest);
            store.Save(stale
                ? record with { HighestIssued = new Generation(highest), Newest = null, Previous = null }
                : record with { HighestIssued = new Generation(highest), Newest = Raise(record.Newest), Previous = Raise(record.Previous) });
            if (stale)
            {
                BindingRows.ZeroSecrets(record);
            }
        }
    }
}
