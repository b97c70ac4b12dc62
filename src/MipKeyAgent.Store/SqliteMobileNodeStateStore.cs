using MipKeyAgent.Protocol.MobileNode;

namespace MipKeyAgent.Store;

/// <summary>
/// The MN's durable <see cref="IMobileNodeStateStore"/> on SQLite, built like the HA's
/// <see cref="SqliteBindingStore"/>: WAL with synchronous=FULL, every <see cref="Save"/> one
/// transaction on disk when it returns (the engine writes before the packet that depends on it
/// leaves). One state row (init epoch, next BU sequence number, IK's sequence reservation and
/// receive right edges, whether an init is unanswered) and up to two generation rows (N, N-1:
/// secret AES-256-GCM encrypted under the <see cref="MasterKey"/>, SPIs, suite, confirmation,
/// outbound reservation, receive right edges, QKD key reference). Every row is sealed (associated
/// data = table, row, all columns; the state row also names which generations are held), so an
/// edited, deleted, added or swapped row is refused with a <see cref="BindingStoreException"/>
/// naming it, e.g. an epoch rolled back to make the HA drop the node's inits. A whole older copy of
/// the file is caught by the rollback anchor (<see cref="MobileNodeRollbackGuard"/>).
/// </summary>
public sealed class SqliteMobileNodeStateStore : IMobileNodeStateStore, IDisposable
{
    private readonly StoreConnection _db;
    private readonly Lock _lock = new();
    private MobileNodeRollbackGuard? _rollback;

    private SqliteMobileNodeStateStore(StoreConnection db) => _db = db;

    public string Path => _db.Path;

    /// <summary>The rollback anchor's file, or null when this store keeps none.</summary>
    public string? AnchorPath => _rollback?.Path;

    /// <summary>What opening the anchor did that belongs in the operator's log, or null.</summary>
    public string? AnchorNotice => _rollback?.Notice;

    /// <summary>The rollback guard (tests: its log's size).</summary>
    internal MobileNodeRollbackGuard? Rollback => _rollback;

    /// <summary>Statements prepared on this connection so far (tests: one per distinct statement, reused by every write).</summary>
    internal int PreparedStatementCount
    {
        get
        {
            lock (_lock)
            {
                return _db.Statements.Count;
            }
        }
    }

    /// <summary>Opens (creating when missing, mode 0600) the MN store; every stored row is checked here.</summary>
    /// <remarks>
    /// With <paramref name="anchorPath"/> the store keeps a rollback anchor there, as the HA's
    /// (<see cref="SqliteBindingStore.Open(string, MasterKey, string?, bool)"/>): an older copy of the database is refused
    /// unless <paramref name="acceptRollback"/>, which raises the Init Epoch and IK reservation to the anchored
    /// values and drops the stored keys.
    /// </remarks>
    public static SqliteMobileNodeStateStore Open(string path, MasterKey masterKey, string? anchorPath = null, bool acceptRollback = false) =>
        Open(path, masterKey, ownsMasterKey: false, anchorPath, acceptRollback);

    internal static SqliteMobileNodeStateStore Open(string path, MasterKey masterKey, bool ownsMasterKey, string? anchorPath = null, bool acceptRollback = false) =>
        StoreConnection.Open(path, masterKey, ownsMasterKey, db =>
        {
            MobileNodeSchema.Schema.Apply(db);
            var store = new SqliteMobileNodeStateStore(db);
            if (anchorPath is not null)
            {
                store._rollback = MobileNodeRollbackGuard.Check(AnchorLog.Create(anchorPath, db.Seal, System.IO.Path.GetFileName(path)), acceptRollback, db, store);
            }
            else
            {
                store.LoadAll().Keys?.ZeroSecrets();
            }
            return store;
        });

    /// <summary>The state and the keys (every row authenticated); the caller zeroes the keys.</summary>
    internal (MobileNodeState State, MobileNodeKeys? Keys) LoadAll()
    {
        lock (_lock)
        {
            var (state, held) = LoadState();
            return (state, MobileNodeRows.ReadKeys(_db, held));
        }
    }

    public MobileNodeState Load()
    {
        lock (_lock)
        {
            return LoadState().State;
        }
    }

    public MobileNodeKeys? LoadKeys()
    {
        lock (_lock)
        {
            return MobileNodeRows.ReadKeys(_db, LoadState().Held);
        }
    }

    /// <summary>The state row; with none, the initial state and no generations held.</summary>
    private (MobileNodeState State, MobileNodeRows.Held Held) LoadState() => MobileNodeRows.ReadState(_db) ?? (default, default);

    public void Save(MobileNodeState state, MobileNodeKeys? keys)
    {
        try
        {
            lock (_lock)
            {
                using var transaction = _db.Connection.BeginTransaction();
                MobileNodeRows.Write(_db, transaction, state, keys);
                transaction.Commit();
                _rollback?.Saved(state, keys);
            }
        }
        catch (SqliteException e)
        {
            throw new BindingStoreException($"writing the mobile node state to '{Path}' failed: {e.Message}", e);
        }
        finally
        {
            // IMobileNodeStateStore.Save takes ownership of the secrets: encrypted and written, the plain copies go.
            keys?.ZeroSecrets();
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _rollback?.Dispose();
            _db.Dispose();
        }
    }
}
