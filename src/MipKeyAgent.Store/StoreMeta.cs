using System.Security.Cryptography;

namespace MipKeyAgent.Store;

/// <summary>
/// The <c>meta</c> rows both SQLite stores keep: a key check sealed under the master key (a wrong
/// master key file is refused by name before any row is read), the schema version byte, and
/// whether the database has a rollback anchor.
/// </summary>
internal static class StoreMeta
{
    /// <summary>The meta table, the same in every store and version.</summary>
    public const string CreateTable = "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);";

    private static readonly byte[] KeyCheckPlaintext = "mipkey master key check"u8.ToArray();

    /// <summary>
    /// The schema version of an existing store, after the master key has opened its key check;
    /// null for a new store (no key check written yet).
    /// </summary>
    public static byte? ReadSchema(StoreConnection db, string path)
    {
        using var read = db.Command("SELECT value FROM meta WHERE name = 'key_check'");
        if (read.ExecuteScalar() is not byte[] check)
        {
            return null;
        }
        OpenKeyCheck(db.Seal, check, path);
        using var version = db.Command("SELECT value FROM meta WHERE name = 'schema'");
        if (version.ExecuteScalar() is not byte[] v || v.Length != 1)
        {
            throw new BindingStoreException($"'{path}' has an unknown schema version");
        }
        return v[0];
    }

    /// <summary>A new store's key check: a constant sealed under the master key.</summary>
    public static byte[] SealKeyCheck(RowSeal seal) => seal.Seal(KeyCheckPlaintext, "meta|key_check");

    /// <summary>Throws, naming <paramref name="store"/>, unless the master key opens <paramref name="check"/>.</summary>
    public static void OpenKeyCheck(RowSeal seal, byte[] check, string store)
    {
        try
        {
            CryptographicOperations.ZeroMemory(seal.Open(check, "meta|key_check", "meta(key_check)"));
        }
        catch (BindingStoreException e)
        {
            throw new BindingStoreException($"the master key does not open '{store}' (wrong master key file?)", e);
        }
    }

    /// <summary>Writes the key check and the schema version of a new store inside <paramref name="transaction"/>.</summary>
    public static void WriteNew(StoreConnection db, SqliteTransaction transaction, byte schemaVersion)
    {
        using var write = db.Command("INSERT INTO meta (name, value) VALUES ('key_check', $check), ('schema', $schema)", transaction);
        write.Parameters.AddWithValue("$check", SealKeyCheck(db.Seal));
        write.Parameters.AddWithValue("$schema", new byte[] { schemaVersion });
        write.ExecuteNonQuery();
    }

    /// <summary>
    /// True when a rollback anchor was made for this database (<see cref="MarkAnchored"/>): its anchor going
    /// missing is then an error, whereas a database that never had one is anchored at its next open.
    /// </summary>
    public static bool IsAnchored(StoreConnection db)
    {
        using var read = db.Command("SELECT value FROM meta WHERE name = 'anchored'");
        if (read.ExecuteScalar() is not byte[] note)
        {
            return false;
        }
        db.Seal.Open(note, "meta|anchored", "meta(anchored)");
        return true;
    }

    /// <summary>Notes in the database that it has a rollback anchor (written once the anchor exists).</summary>
    public static void MarkAnchored(StoreConnection db)
    {
        using var write = db.Command("INSERT OR REPLACE INTO meta (name, value) VALUES ('anchored', $note)");
        write.Parameters.AddWithValue("$note", db.Seal.Seal([], "meta|anchored"));
        write.ExecuteNonQuery();
    }

    /// <summary>Sets the schema version byte of a migrated store inside <paramref name="transaction"/>.</summary>
    public static void WriteVersion(StoreConnection db, SqliteTransaction transaction, byte schemaVersion)
    {
        using var write = db.Command("UPDATE meta SET value = $schema WHERE name = 'schema'", transaction);
        write.Parameters.AddWithValue("$schema", new byte[] { schemaVersion });
        write.ExecuteNonQuery();
    }
}
