using MipKeyAgent.Protocol.MobileNode;

namespace MipKeyAgent.Store;

/// <summary>
/// How a host opens its state store (for the CLI: <c>mipkey ha --store PATH --master-key FILE</c>,
/// or <c>--volatile</c>).
/// <list type="bullet">
/// <item><see cref="Open"/>: durable SQLite store; the database is created 0600 when missing, the
/// master key file must exist with mode 0600 (<see cref="MasterKey.Create"/> makes one).</item>
/// <item><see cref="Volatile"/>: in-memory; a restart is a total state loss (nodes re-initialize,
/// and the IK's outbound counters restart at 0, so only use it when IK is re-provisioned at each
/// start or for tests and demos).</item>
/// </list>
/// Errors are <see cref="BindingStoreException"/> with a message naming the file or row: print it and exit.
/// </summary>
public static class BindingStores
{
    /// <summary>
    /// Opens the HA's durable store with its rollback anchor at <see cref="DefaultAnchorPath"/>
    /// (an older copy of the database is refused unless <paramref name="acceptRollback"/>; see
    /// <see cref="SqliteBindingStore.Open(string, MasterKey, string?, bool)"/>). Dispose it after the engine.
    /// </summary>
    /// <param name="rollbackAnchor">
    /// True (the default): the anchor is created with the store, checked at every open and appended to by every
    /// write that moves a mark (one 64-octet record, O(1)); a store that never had one is anchored as it is
    /// (<see cref="SqliteBindingStore.AnchorNotice"/>). False (<c>mipkey ha --no-rollback-anchor</c>): no anchor is
    /// read or written; one left from earlier opens stays a valid, older lower bound.
    /// </param>
    public static SqliteBindingStore Open(string path, string masterKeyPath, bool acceptRollback = false, bool rollbackAnchor = true)
    {
        var key = MasterKey.Load(masterKeyPath);
        try
        {
            return SqliteBindingStore.Open(path, key, ownsMasterKey: true, rollbackAnchor ? DefaultAnchorPath(path, masterKeyPath) : null, acceptRollback);
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Where the rollback anchor of database <paramref name="path"/> lives: next to the master key,
    /// named after the database file (<c>/etc/mipkey/master.key</c> + <c>/var/lib/mipkey/ha.db</c> gives
    /// <c>/etc/mipkey/ha.db.anchor</c>), so that restoring the database directory alone is detected.
    /// </summary>
    public static string DefaultAnchorPath(string path, string masterKeyPath) =>
        System.IO.Path.Combine(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(masterKeyPath)) ?? ".", System.IO.Path.GetFileName(path) + ".anchor");

    /// <summary>An in-memory store (<c>--volatile</c>).</summary>
    public static InMemoryBindingStore Volatile() => new();

    /// <summary>
    /// Opens the MN's durable store (init epoch, sequence numbers, keys) with its rollback anchor at
    /// <see cref="DefaultAnchorPath"/>, as <see cref="Open"/> does for the HA. Dispose it after the engine.
    /// </summary>
    public static SqliteMobileNodeStateStore OpenMobileNode(string path, string masterKeyPath, bool acceptRollback = false, bool rollbackAnchor = true)
    {
        var key = MasterKey.Load(masterKeyPath);
        try
        {
            return SqliteMobileNodeStateStore.Open(path, key, ownsMasterKey: true, rollbackAnchor ? DefaultAnchorPath(path, masterKeyPath) : null, acceptRollback);
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }

    /// <summary>An in-memory MN store (<c>--volatile</c>): every start of the process is a fresh init (epoch 1).</summary>
    public static InMemoryMobileNodeStateStore VolatileMobileNode() => new(keepKeys: false);
}
