namespace MipKeyAgent.Store.Postgres;

/// <summary>What the lease row says: who holds it, its fencing token and how long it has left (database time).</summary>
/// <param name="Holder">The holder's name (empty when no HA ever took the lease).</param>
/// <param name="Token">The fencing token: raised by one at every takeover, never reused.</param>
/// <param name="Age">How long the holder has held it (since it took it).</param>
/// <param name="Remaining">Until it expires (zero or negative: expired, any HA may take it).</param>
public readonly record struct LeaseState(string Holder, long Token, TimeSpan Age, TimeSpan Remaining)
{
    public bool Expired => Remaining <= TimeSpan.Zero;
}

/// <summary>
/// The active HA's lease: one row in <c>ha_lease</c> (name, holder, token, expiry) that an HA takes when it is
/// free or expired and renews while it serves. Every write transaction of the <see cref="PostgresBindingStore"/>
/// that holds it first locks the row (<c>FOR KEY SHARE</c>) and checks that the token is still this lease's and
/// unexpired, in the same transaction: a takeover (which locks the row <c>FOR UPDATE</c> before it raises the
/// token) waits for that transaction and every later write of the former holder is refused, however long it was
/// paused. The renewal, an <c>UPDATE</c> of the expiry alone (a no-key update), does not conflict with the
/// writes' lock: an active HA whose groups follow one another without a gap (a busy one) never starves its own
/// renewal. Times are the database's, so the HAs' clocks do not matter.
/// </summary>
public sealed class PostgresLease
{
    /// <summary>The lease of one home agent (load sharing: one lease per partition, <see cref="PostgresPartitions.LeaseName"/>).</summary>
    public const string DefaultName = "home-agent";

    /// <summary>The takeover's first statement: waits for every write transaction still holding the expired lease's row.</summary>
    private const string LockExpiredSql = "SELECT 1 FROM ha_lease WHERE name = @name AND expires_at <= clock_timestamp() FOR UPDATE";

    private const string TakeSql = """
        INSERT INTO ha_lease AS l (name, holder, token, acquired_at, expires_at)
        VALUES (@name, @holder, 1, clock_timestamp(), clock_timestamp() + @duration)
        ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, token = l.token + 1, acquired_at = excluded.acquired_at, expires_at = excluded.expires_at
        WHERE l.expires_at <= clock_timestamp()
        RETURNING token
        """;

    private const string RenewSql = "UPDATE ha_lease SET expires_at = now() + @duration WHERE name = @name AND token = @token AND expires_at > now()";

    private const string CheckSql = "SELECT 1 FROM ha_lease WHERE name = @name AND token = @token AND expires_at > now() FOR KEY SHARE";

    private const string ReleaseSql = "UPDATE ha_lease SET expires_at = now() WHERE name = @name AND token = @token";

    private const string ReadSql =
        "SELECT holder, token, extract(epoch FROM now() - acquired_at), extract(epoch FROM expires_at - now()) FROM ha_lease WHERE name = @name";

    private PostgresLease(string name, string holder, long token, TimeSpan duration)
    {
        Name = name;
        Holder = holder;
        Token = token;
        Duration = duration;
    }

    public string Name { get; }

    /// <summary>This HA's name in the lease row.</summary>
    public string Holder { get; }

    /// <summary>The fencing token this HA's writes carry.</summary>
    public long Token { get; }

    public TimeSpan Duration { get; }

    /// <summary>
    /// Takes the lease named <paramref name="name"/> for <paramref name="holder"/> when it is free or expired
    /// (with a new token); null while another HA holds it.
    /// </summary>
    public static PostgresLease? TryTake(NpgsqlConnection connection, string name, string holder, TimeSpan duration)
    {
        ArgumentNullException.ThrowIfNull(connection);
        using var transaction = connection.BeginTransaction();
        using (var lockExpired = new NpgsqlCommand(LockExpiredSql, connection, transaction))
        {
            lockExpired.Parameters.AddWithValue("name", name);
            lockExpired.ExecuteScalar();
        }
        using var take = new NpgsqlCommand(TakeSql, connection, transaction);
        take.Parameters.AddWithValue("name", name);
        take.Parameters.AddWithValue("holder", holder);
        take.Parameters.AddWithValue("duration", duration);
        var taken = take.ExecuteScalar() is long token ? new PostgresLease(name, holder, token, duration) : null;
        transaction.Commit();
        return taken;
    }

    /// <summary>The lease row named <paramref name="name"/>, or null when no HA ever took it.</summary>
    public static LeaseState? Read(NpgsqlConnection connection, string name)
    {
        ArgumentNullException.ThrowIfNull(connection);
        using var read = new NpgsqlCommand(ReadSql, connection);
        read.Parameters.AddWithValue("name", name);
        using var reader = read.ExecuteReader();
        return reader.Read()
            ? new LeaseState(reader.GetString(0), reader.GetInt64(1), TimeSpan.FromSeconds((double)reader.GetDecimal(2)),
                TimeSpan.FromSeconds((double)reader.GetDecimal(3)))
            : null;
    }

    /// <summary>Extends the lease by <see cref="Duration"/> from now; false when it was lost (expired or taken over).</summary>
    public bool TryRenew(NpgsqlConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        using var renew = new NpgsqlCommand(RenewSql, connection);
        renew.Parameters.AddWithValue("duration", Duration);
        renew.Parameters.AddWithValue("name", Name);
        renew.Parameters.AddWithValue("token", Token);
        return renew.ExecuteNonQuery() == 1;
    }

    /// <summary>Ends the lease now (orderly stop), so a standby need not wait for its expiry.</summary>
    public void Release(NpgsqlConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        using var release = new NpgsqlCommand(ReleaseSql, connection);
        release.Parameters.AddWithValue("name", Name);
        release.Parameters.AddWithValue("token", Token);
        release.ExecuteNonQuery();
    }

    /// <summary>
    /// The fencing check, the first statement of every write transaction: locks the lease row against a takeover
    /// until the transaction ends, or throws <see cref="BindingStoreException"/> when this lease is no longer valid.
    /// </summary>
    public void Check(NpgsqlConnection connection, NpgsqlTransaction transaction, string store)
    {
        using var check = new NpgsqlCommand(CheckSql, connection, transaction);
        check.Parameters.AddWithValue("name", Name);
        check.Parameters.AddWithValue("token", Token);
        if (check.ExecuteScalar() is not null)
        {
            return;
        }
        using var read = new NpgsqlCommand("SELECT holder, token FROM ha_lease WHERE name = @name", connection, transaction);
        read.Parameters.AddWithValue("name", Name);
        using var reader = read.ExecuteReader();
        string now = reader.Read() && reader.GetInt64(1) != Token
            ? $"now held by {reader.GetString(0)} with token {reader.GetInt64(1)}"
            : "expired";
        throw new BindingStoreException(
            $"write to '{store}' refused: {Holder} no longer holds the lease '{Name}' (its token {Token}; {now})");
    }
}
