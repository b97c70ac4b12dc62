using SQLitePCL;

namespace MipKeyAgent.Store;

/// <summary>
/// One hot statement (a write of the store's, a range query of the snapshot loader) stepped through SQLite's own API
/// (SQLitePCLRaw, under Microsoft.Data.Sqlite on the same connection handle): prepared once, its parameters bound by
/// index and its columns read by index (no parameter objects, no boxing, no data reader, no string or array per
/// value), stepped and reset. It runs in whatever transaction the connection has open (the store's
/// <see cref="SqliteTransaction"/>). Not thread-safe: its owner (the store under its lock, one loader worker) alone uses it.
/// </summary>
internal sealed class RawStatement : IDisposable
{
    private readonly sqlite3 _db;
    private readonly sqlite3_stmt _statement;

    private RawStatement(sqlite3 db, sqlite3_stmt statement)
    {
        _db = db;
        _statement = statement;
    }

    /// <summary>
    /// Prepares <paramref name="sql"/> on <paramref name="connection"/>; <paramref name="parameters"/> are its
    /// parameter names in index order (checked here, so a statement whose text numbers them otherwise fails at once).
    /// </summary>
    public static RawStatement Prepare(SqliteConnection connection, string sql, ReadOnlySpan<string> parameters)
    {
        var db = connection.Handle ?? throw new InvalidOperationException("the connection is not open");
        int rc = raw.sqlite3_prepare_v2(db, sql, out var statement);
        if (rc != raw.SQLITE_OK)
        {
            string message = raw.sqlite3_errmsg(db).utf8_to_string();
            statement?.Dispose();
            throw new SqliteException(message, rc);
        }
        var prepared = new RawStatement(db, statement);
        if (raw.sqlite3_bind_parameter_count(statement) != parameters.Length)
        {
            prepared.Dispose();
            throw new InvalidOperationException($"'{sql}' takes {raw.sqlite3_bind_parameter_count(statement)} parameters, not {parameters.Length}");
        }
        for (int i = 0; i < parameters.Length; i++)
        {
            if (raw.sqlite3_bind_parameter_index(statement, parameters[i]) != i + 1)
            {
                prepared.Dispose();
                throw new InvalidOperationException($"'{sql}': parameter {parameters[i]} is not number {i + 1}");
            }
        }
        return prepared;
    }

    /// <summary>Binds parameter <paramref name="ordinal"/> (0-based: the column map's ordinal).</summary>
    public void Bind(int ordinal, long value) => Check(raw.sqlite3_bind_int64(_statement, ordinal + 1, value));

    /// <summary>Binds <paramref name="value"/> or NULL.</summary>
    public void Bind(int ordinal, long? value)
    {
        if (value is { } v)
        {
            Bind(ordinal, v);
        }
        else
        {
            BindNull(ordinal);
        }
    }

    /// <summary>Binds a blob (copied by SQLite: the span may be reused at once).</summary>
    public void BindBlob(int ordinal, ReadOnlySpan<byte> value) => Check(raw.sqlite3_bind_blob(_statement, ordinal + 1, value));

    /// <summary>Binds UTF-8 text (copied by SQLite).</summary>
    public void BindText(int ordinal, ReadOnlySpan<byte> utf8) => Check(raw.sqlite3_bind_text(_statement, ordinal + 1, utf8));

    /// <summary>Binds text (converted on the stack for short strings, copied by SQLite).</summary>
    public void BindText(int ordinal, string value) => Check(raw.sqlite3_bind_text(_statement, ordinal + 1, value));

    public void BindNull(int ordinal) => Check(raw.sqlite3_bind_null(_statement, ordinal + 1));

    /// <summary>
    /// Runs the statement to its end and resets it for the next use; throws <see cref="SqliteException"/> with
    /// SQLite's message when it fails (the statement is reset either way, the transaction is the caller's).
    /// </summary>
    public void Execute()
    {
        int rc = raw.sqlite3_step(_statement);
        while (rc == raw.SQLITE_ROW)
        {
            rc = raw.sqlite3_step(_statement);
        }
        if (rc != raw.SQLITE_DONE)
        {
            string message = raw.sqlite3_errmsg(_db).utf8_to_string();
            raw.sqlite3_reset(_statement);
            throw new SqliteException(message, rc);
        }
        raw.sqlite3_reset(_statement);
    }

    /// <summary>Rows the connection's last completed INSERT, UPDATE or DELETE changed (after <see cref="Execute"/>).</summary>
    public int Changes => raw.sqlite3_changes(_db);

    /// <summary>
    /// Steps a query: true with a row ready for the column reads, false at its end (the statement is then reset for
    /// the next use); throws <see cref="SqliteException"/> with SQLite's message when it fails (reset as well).
    /// </summary>
    public bool Step()
    {
        int rc = raw.sqlite3_step(_statement);
        if (rc == raw.SQLITE_ROW)
        {
            return true;
        }
        if (rc != raw.SQLITE_DONE)
        {
            string message = raw.sqlite3_errmsg(_db).utf8_to_string();
            raw.sqlite3_reset(_statement);
            throw new SqliteException(message, rc);
        }
        raw.sqlite3_reset(_statement);
        return false;
    }

    /// <summary>Ends a query before its last row (its read lock is released; the bindings stay).</summary>
    public void Reset() => raw.sqlite3_reset(_statement);

    /// <summary>Whether result column <paramref name="column"/> of the current row is NULL.</summary>
    public bool IsNull(int column) => raw.sqlite3_column_type(_statement, column) == raw.SQLITE_NULL;

    /// <summary>Whether result column <paramref name="column"/> of the current row is a blob.</summary>
    public bool IsBlob(int column) => raw.sqlite3_column_type(_statement, column) == raw.SQLITE_BLOB;

    /// <summary>Result column <paramref name="column"/> as an integer (SQLite's conversion for other types).</summary>
    public long Int64(int column) => raw.sqlite3_column_int64(_statement, column);

    /// <summary>
    /// Result column <paramref name="column"/>'s octets: a blob as stored, text as its UTF-8 (no terminator), NULL as
    /// empty. The span points into SQLite's row buffer: valid until the next step, reset or column read of another type.
    /// </summary>
    public ReadOnlySpan<byte> Bytes(int column) => raw.sqlite3_column_blob(_statement, column);

    private void Check(int rc)
    {
        if (rc != raw.SQLITE_OK)
        {
            throw new SqliteException(raw.sqlite3_errmsg(_db).utf8_to_string(), rc);
        }
    }

    /// <summary>Finalizes the statement (before the connection closes).</summary>
    public void Dispose() => _statement.Dispose();
}
