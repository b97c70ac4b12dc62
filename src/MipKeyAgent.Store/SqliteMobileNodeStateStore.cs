using System.Globalization;
using System.Security.Cryptography;
using Microsoft.Data.Sqlite;
using MipKeyAgent.Protocol.HomeAgent;
using MipKeyAgent.Protocol.Keys;
using MipKeyAgent.Protocol.MobileNode;
using MipKeyAgent.Wire;

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
/// naming it, e.g. an epoch rolled back to make the HA drop the node's inits.
/// </summary>
public sealed class SqliteMobileNodeStateStore : IMobileNodeStateStore, IDisposable
{
    private const int SchemaVersion = 2;
    private const string Owner = "1";
    private static readonly string[] SlotNames = ["newest", "previous"];

    private readonly SqliteConnection _connection;
    private readonly RowSeal _seal;
    private readonly PreparedStatements _statements;
    private readonly MasterKey _masterKey;
    private readonly bool _ownsMasterKey;
    private readonly Lock _lock = new();

    private SqliteMobileNodeStateStore(string path, SqliteConnection connection, MasterKey masterKey, bool ownsMasterKey)
    {
        Path = path;
        _connection = connection;
        _masterKey = masterKey;
        _ownsMasterKey = ownsMasterKey;
        _seal = new RowSeal(masterKey);
        _statements = new PreparedStatements(connection);
    }

    public string Path { get; }

    /// <summary>Statements prepared on this connection so far (tests: one per distinct statement, reused by every write).</summary>
    internal int PreparedStatementCount
    {
        get
        {
            lock (_lock)
            {
                return _statements.Count;
            }
        }
    }

    /// <summary>Opens (creating when missing, mode 0600) the MN store; every stored row is checked here.</summary>
    public static SqliteMobileNodeStateStore Open(string path, MasterKey masterKey) => Open(path, masterKey, ownsMasterKey: false);

    internal static SqliteMobileNodeStateStore Open(string path, MasterKey masterKey, bool ownsMasterKey)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(masterKey);
        var connection = SqliteFiles.OpenOwnerOnly(path);
        var store = new SqliteMobileNodeStateStore(path, connection, masterKey, ownsMasterKey);
        try
        {
            store.Initialize();
            _ = store.Load();
            store.LoadKeys()?.ZeroSecrets();
            return store;
        }
        catch
        {
            store._statements.Dispose();
            store._seal.Dispose();
            connection.Dispose();
            throw;
        }
    }

    private void Initialize()
    {
        using (var create = Command("""
            CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS mn_state (id INTEGER PRIMARY KEY CHECK (id = 1), init_epoch INTEGER NOT NULL,
                next_sequence INTEGER NOT NULL, ik_reserved INTEGER NOT NULL, ik_control_edge INTEGER NOT NULL, ik_data_edge INTEGER NOT NULL,
                awaiting_init INTEGER NOT NULL, init_answer INTEGER, seal BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS mn_generations (
                slot INTEGER PRIMARY KEY, generation INTEGER NOT NULL, spi_mn_to_ha INTEGER NOT NULL, spi_ha_to_mn INTEGER NOT NULL,
                suite INTEGER NOT NULL, confirmed INTEGER NOT NULL, created_at INTEGER NOT NULL, transmit_reserved INTEGER NOT NULL,
                control_edge INTEGER NOT NULL, data_edge INTEGER NOT NULL, secret BLOB NOT NULL, key_id TEXT, key_source TEXT);
            """))
        {
            create.ExecuteNonQuery();
        }
        switch (StoreMeta.ReadSchema(_connection, _seal, Path))
        {
            case SchemaVersion:
                return;
            case null:
                using (var transaction = _connection.BeginTransaction())
                {
                    StoreMeta.WriteNew(_connection, transaction, _seal, SchemaVersion);
                    MigrateSchema1(transaction);
                    transaction.Commit();
                }
                return;
            default:
                throw new BindingStoreException($"'{Path}' has an unknown schema version");
        }
    }

    /// <summary>
    /// Schema 1 (no meta table) kept one <c>mobile_node</c> row: epoch, next sequence, IK reservation.
    /// It is checked under its own seal and carried over without keys (schema 1 held none).
    /// </summary>
    private void MigrateSchema1(SqliteTransaction transaction)
    {
        using (var exists = Command("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'mobile_node'", transaction))
        {
            if (Convert.ToInt64(exists.ExecuteScalar(), CultureInfo.InvariantCulture) == 0)
            {
                return;
            }
        }
        MobileNodeState? old = null;
        using (var command = Command("SELECT init_epoch, next_sequence, ik_reserved, seal FROM mobile_node WHERE id = 1", transaction))
        using (var reader = command.ExecuteReader())
        {
            if (reader.Read())
            {
                var state = new MobileNodeState(unchecked((ulong)reader.GetInt64(0)), (ushort)reader.GetInt64(1), (uint)reader.GetInt64(2));
                _ = _seal.Open(reader.GetValue(3) as byte[], string.Join('|', "mobile_node", "1", state.InitEpoch.ToString(CultureInfo.InvariantCulture),
                    state.NextSequence, state.InitializationSequenceReserved, "seal"), "mobile_node(id=1)");
                old = state;
            }
        }
        if (old is { } migrated)
        {
            WriteState(transaction, migrated, null);
        }
        using var drop = Command("DROP TABLE mobile_node", transaction);
        drop.ExecuteNonQuery();
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
            var (_, held, initAnswer) = LoadState();
            var generations = new GenerationRecord?[2];
            try
            {
                var command = _statements.Get("""
                    SELECT slot, generation, spi_mn_to_ha, spi_ha_to_mn, suite, confirmed, created_at, transmit_reserved,
                           control_edge, data_edge, secret, key_id, key_source FROM mn_generations
                    """, null);
                using (var reader = command.ExecuteReader())
                {
                    while (reader.Read())
                    {
                        long slot = reader.GetInt64(0);
                        string row = $"mn_generations(slot={(slot is 0 or 1 ? SlotNames[slot] : slot.ToString(CultureInfo.InvariantCulture))})";
                        if (slot is not (0 or 1))
                        {
                            throw new BindingStoreException($"{row}: unknown slot (corrupted store)");
                        }
                        var values = SqliteBindingStore.GenerationColumns.Read(reader, 1, SqliteBindingStore.ReadReference(reader, 11, row));
                        byte[] secret = _seal.Open(reader.GetValue(10) as byte[], Associated(slot, values), row);
                        if (secret.Length != KeyLengths.Secret)
                        {
                            CryptographicOperations.ZeroMemory(secret);
                            throw new BindingStoreException($"{row}: secret is not {KeyLengths.Secret} octets");
                        }
                        generations[slot] = new GenerationRecord(values.Generation, secret, values.SpiMnToHa, values.SpiHaToMn, values.Suite,
                            values.Confirmed, values.CreatedAt, values.TransmitReserved)
                        {
                            ControlReceiveRightEdge = values.ControlEdge,
                            DataReceiveRightEdge = values.DataEdge,
                            Reference = values.Reference,
                        };
                    }
                }
                // The state row's seal names the generations held: a deleted or added generation row is refused too.
                if (generations[0]?.Generation != held.Newest || generations[1]?.Generation != held.Previous || (generations[0] is null && generations[1] is not null))
                {
                    throw new BindingStoreException($"'{Path}': the generation rows do not match mn_state(id=1) (deleted or added row)");
                }
                return generations[0] is { } newest ? new MobileNodeKeys(newest, generations[1]) { InitAnswer = initAnswer } : null;
            }
            catch
            {
                CryptographicOperations.ZeroMemory(generations[0]?.Secret);
                CryptographicOperations.ZeroMemory(generations[1]?.Secret);
                throw;
            }
        }
    }

    private (MobileNodeState State, (Generation? Newest, Generation? Previous) Held, Generation? InitAnswer) LoadState()
    {
        var command = _statements.Get("""
            SELECT init_epoch, next_sequence, ik_reserved, ik_control_edge, ik_data_edge, awaiting_init, init_answer, seal FROM mn_state WHERE id = 1
            """, null);
        using var reader = command.ExecuteReader();
        if (!reader.Read())
        {
            return (default, default, null);
        }
        var state = new MobileNodeState(unchecked((ulong)reader.GetInt64(0)), (ushort)reader.GetInt64(1), (uint)reader.GetInt64(2))
        {
            InitializationControlReceiveRightEdge = (uint)reader.GetInt64(3),
            InitializationDataReceiveRightEdge = (uint)reader.GetInt64(4),
            AwaitingInit = reader.GetInt64(5) != 0,
        };
        Generation? initAnswer = reader.IsDBNull(6) ? null : new Generation((uint)reader.GetInt64(6));
        byte[] held = _seal.Open(reader.GetValue(7) as byte[], StateAssociated(state, initAnswer), "mn_state(id=1)");
        if (held.Length != 8)
        {
            throw new BindingStoreException("mn_state(id=1): sealed generation list is not 8 octets (corrupted store)");
        }
        uint newest = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(held);
        uint previous = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(held.AsSpan(4));
        return (state, (newest == 0 ? null : new Generation(newest), previous == 0 ? null : new Generation(previous)), initAnswer);
    }

    public void Save(MobileNodeState state, MobileNodeKeys? keys)
    {
        try
        {
            lock (_lock)
            {
                using var transaction = _connection.BeginTransaction();
                WriteState(transaction, state, keys);
                transaction.Commit();
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

    private void WriteState(SqliteTransaction transaction, MobileNodeState state, MobileNodeKeys? keys)
    {
        // The state row's sealed plaintext lists the generations held (0: none), binding the generation rows to it.
        byte[] held = new byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(held, keys?.Newest.Generation.Value ?? 0);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(held.AsSpan(4), keys?.Previous?.Generation.Value ?? 0);
        var upsert = _statements.Get("""
            INSERT OR REPLACE INTO mn_state (id, init_epoch, next_sequence, ik_reserved, ik_control_edge, ik_data_edge, awaiting_init, init_answer, seal)
            VALUES (1, $epoch, $sequence, $reserved, $control, $data, $awaiting, $answer, $seal)
            """, transaction, "$epoch", "$sequence", "$reserved", "$control", "$data", "$awaiting", "$answer", "$seal");
        var p = upsert.Parameters;
        p[0].Value = unchecked((long)state.InitEpoch);
        p[1].Value = (long)state.NextSequence;
        p[2].Value = (long)state.InitializationSequenceReserved;
        p[3].Value = (long)state.InitializationControlReceiveRightEdge;
        p[4].Value = (long)state.InitializationDataReceiveRightEdge;
        p[5].Value = state.AwaitingInit ? 1L : 0L;
        p[6].Value = keys?.InitAnswer is { } answer ? (long)answer.Value : DBNull.Value;
        p[7].Value = _seal.Seal(held, StateAssociated(state, keys?.InitAnswer));
        upsert.ExecuteNonQuery();
        _statements.Get("DELETE FROM mn_generations", transaction).ExecuteNonQuery();
        if (keys is null)
        {
            return;
        }
        InsertGeneration(transaction, 0, keys.Newest);
        if (keys.Previous is { } previous)
        {
            InsertGeneration(transaction, 1, previous);
        }
    }

    private void InsertGeneration(SqliteTransaction transaction, long slot, GenerationRecord generation)
    {
        var values = SqliteBindingStore.GenerationColumns.From(generation);
        var insert = _statements.Get("""
            INSERT INTO mn_generations (slot, generation, spi_mn_to_ha, spi_ha_to_mn, suite, confirmed, created_at, transmit_reserved,
                control_edge, data_edge, secret, key_id, key_source)
            VALUES ($slot, $generation, $spiMnToHa, $spiHaToMn, $suite, $confirmed, $created, $reserved, $control, $data, $secret, $keyId, $keySource)
            """, transaction,
            "$slot", "$generation", "$spiMnToHa", "$spiHaToMn", "$suite", "$confirmed", "$created", "$reserved", "$control", "$data", "$secret",
            "$keyId", "$keySource");
        insert.Parameters[0].Value = slot;
        values.Bind(insert.Parameters, 1, _seal.Seal(generation.Secret, Associated(slot, values)));
        insert.ExecuteNonQuery();
    }

    private static RowSeal.AssociatedData Associated(long slot, SqliteBindingStore.GenerationColumns values) =>
        SqliteBindingStore.GenerationAssociated(new RowSeal.AssociatedData(), "mn_generations", Owner, SlotNames[slot], values);

    private static string StateAssociated(MobileNodeState s, Generation? initAnswer) => string.Join('|', "mn_state", Owner,
        s.InitEpoch.ToString(CultureInfo.InvariantCulture), s.NextSequence, s.InitializationSequenceReserved, s.InitializationControlReceiveRightEdge,
        s.InitializationDataReceiveRightEdge, s.AwaitingInit, initAnswer?.Value.ToString(CultureInfo.InvariantCulture) ?? "-", "held");

    private SqliteCommand Command(string sql, SqliteTransaction? transaction = null)
    {
        var command = _connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        return command;
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _statements.Dispose();
            _seal.Dispose();
            _connection.Dispose();
            if (_ownsMasterKey)
            {
                _masterKey.Dispose();
            }
        }
    }
}
