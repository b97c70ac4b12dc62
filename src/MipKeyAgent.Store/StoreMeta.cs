using System.Security.Cryptography;
using Microsoft.Data.Sqlite;

namespace MipKeyAgent.Store;

/// <summary>
/// The <c>meta</c> rows both SQLite stores keep: a key check sealed under the master key (a wrong
/// master key file is refused by name before any row is read) and the schema version byte.
/// </summary>
internal static class StoreMeta
{
    private static readonly byte[] KeyCheckPlaintext = "mipkey master key check"u8.ToArray();

    /// <summary>
    /// The schema version of an existing store, after the master key has opened its key check;
    /// null for a new store (no key check written yet).
    /// </summary>
    public static byte? ReadSchema(SqliteConnection connection, RowSeal seal, string path)
    {
        using var read = Command(connection, "SELECT value FROM meta WHERE name = 'key_check'", null);
        if (read.ExecuteScalar() is not byte[] check)
        {
            return null;
        }
        try
        {
            CryptographicOperations.ZeroMemory(seal.Open(check, "meta|key_check", "meta(key_check)"));
        }
        catch (BindingStoreException e)
        {
            throw new BindingStoreException($"the master key does not open '{path}' (wrong master key file?)", e);
        }
        using var version = Command(connection, "SELECT value FROM meta WHERE name = 'schema'", null);
        if (version.ExecuteScalar() is not byte[] v || v.Length != 1)
        {
            throw new BindingStoreException($"'{path}' has an unknown schema version");
        }
        return v[0];
    }

    /// <summary>Writes the key check and the schema version of a new store inside <paramref name="transaction"/>.</summary>
    public static void WriteNew(SqliteConnection connection, SqliteTransaction transaction, RowSeal seal, byte schemaVersion)
    {
        using var write = Command(connection, "INSERT INTO meta (name, value) VALUES ('key_check', $check), ('schema', $schema)", transaction);
        write.Parameters.AddWithValue("$check", seal.Seal(KeyCheckPlaintext, "meta|key_check"));
        write.Parameters.AddWithValue("$schema", new byte[] { schemaVersion });
        write.ExecuteNonQuery();
    }

    private static SqliteCommand Command(SqliteConnection connection, string sql, SqliteTransaction? transaction)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        return command;
    }
}
