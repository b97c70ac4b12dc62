namespace MipKeyAgent.Store.Postgres;

/// <summary>
/// The PostgreSQL store's SQL, built from the <see cref="BindingRows"/> column maps as the SQLite store's
/// (<see cref="BindingStatements"/>), with Npgsql's <c>@name</c> parameters: a SELECT returns a map's columns in
/// map order and a write takes one parameter per column in the same order, so the shared codec's ordinals serve both.
/// </summary>
internal static class PostgresStatements
{
    /// <summary>Writes a binding row with a new row version (what a standby's delta read compares).</summary>
    public static readonly string UpsertBinding = $"""
        INSERT INTO bindings ({BindingRows.Bindings.List()}, row_version) VALUES ({BindingRows.Bindings.Parameters('@')}, nextval('row_versions'))
        ON CONFLICT (home_address) DO UPDATE SET {BindingRows.Bindings.UpdateFromExcluded("home_address")}, row_version = excluded.row_version
        """;

    public static readonly string UpsertGeneration = $"""
        INSERT INTO generations ({BindingRows.Generations.List()}) VALUES ({BindingRows.Generations.Parameters('@')})
        ON CONFLICT (home_address, slot) DO UPDATE SET {BindingRows.Generations.UpdateFromExcluded("home_address", "slot")}
        """;

    /// <summary>Deletes the generation rows of @home that the record no longer holds (@newest, @previous: true when held).</summary>
    public const string DeleteStaleGenerations =
        "DELETE FROM generations WHERE home_address = @home AND NOT (slot = 0 AND @newest) AND NOT (slot = 1 AND @previous)";

    public static readonly string SelectGenerations = $"SELECT {GenerationColumns.Map.List()} FROM generations WHERE home_address = @home";

    public static readonly string SelectBinding = $"SELECT {BindingRows.Bindings.List()} FROM bindings WHERE home_address = @home";

    public const string DeleteGenerations = "DELETE FROM generations WHERE home_address = @home";

    public const string DeleteBinding = "DELETE FROM bindings WHERE home_address = @home";

    public static readonly string UpsertReservation = $"""
        INSERT INTO ik_reservations ({BindingRows.Reservations.List()}, row_version) VALUES ({BindingRows.Reservations.Parameters('@')}, nextval('row_versions'))
        ON CONFLICT (home_address) DO UPDATE SET {BindingRows.Reservations.UpdateFromExcluded("home_address")}, row_version = excluded.row_version
        """;

    public static readonly string SelectReservation = $"SELECT {BindingRows.Reservations.List()} FROM ik_reservations WHERE home_address = @home";

    public static readonly string SelectAllReservations = $"SELECT {BindingRows.Reservations.List()} FROM ik_reservations";

    /// <summary>Every binding row joined with its generation rows (NULL when it holds none), grouped by binding.</summary>
    public static readonly string SelectJoined = $"""
        SELECT {BindingRows.Bindings.List("b")}, {GenerationColumns.Map.List("g")}
        FROM bindings b
        LEFT JOIN generations g ON g.home_address = b.home_address
        ORDER BY b.home_address
        """;

    /// <summary>The binding rows of the homes @homes joined with their generation rows (a standby's delta read).</summary>
    public static readonly string SelectJoinedOf = $"""
        SELECT {BindingRows.Bindings.List("b")}, {GenerationColumns.Map.List("g")}
        FROM bindings b
        LEFT JOIN generations g ON g.home_address = b.home_address
        WHERE b.home_address = ANY(@homes)
        ORDER BY b.home_address
        """;

    public static readonly string SelectReservationsOf = $"SELECT {BindingRows.Reservations.List()} FROM ik_reservations WHERE home_address = ANY(@homes)";

    public const string SelectBindingVersions = "SELECT home_address, row_version FROM bindings";

    public const string SelectReservationVersions = "SELECT home_address, row_version FROM ik_reservations";

    public const string CountGenerationsOf = "SELECT count(*) FROM generations WHERE home_address = ANY(@homes)";

    public static readonly int JoinedGenerationFirst = BindingRows.Bindings.Count;

    public const string InsertRetiredSpis = "INSERT INTO retired_spis (spi) SELECT unnest(@spis) ON CONFLICT DO NOTHING";

    /// <summary>A command of a batch with one parameter per name of <paramref name="map"/> (values DBNull until bound), in map order.</summary>
    public static NpgsqlBatchCommand BatchCommand(string sql, ColumnMap map)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (string name in map.Names)
        {
            command.Parameters.Add(new NpgsqlParameter(name, DBNull.Value));
        }
        return command;
    }

    /// <summary>Adds one parameter per name of <paramref name="map"/> (values DBNull until bound), in map order.</summary>
    public static NpgsqlCommand Command(string sql, NpgsqlConnection connection, NpgsqlTransaction? transaction, ColumnMap? map = null)
    {
        var command = new NpgsqlCommand(sql, connection, transaction);
        foreach (string name in map?.Names ?? [])
        {
            command.Parameters.Add(new NpgsqlParameter(name, DBNull.Value));
        }
        return command;
    }
}
