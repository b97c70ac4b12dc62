namespace MipKeyAgent.Store.Tests;

/// <summary>The MN's durable store: round trip of state and keys, owner-only file, secrets encrypted, tamper detection.</summary>
public sealed class SqliteMobileNodeStateStoreTests : IDisposable
{
    private static readonly MobileNodeState FullState = new(ulong.MaxValue - 1, 65535, 4_000_000_000)
    {
        InitializationControlReceiveRightEdge = 17,
        InitializationDataReceiveRightEdge = 4_100_000_000,
        AwaitingInit = true,
    };

    private readonly StoreDirectory _directory = new();

    private string DatabasePath => Path.Combine(_directory.Path, "mn.db");

    private SqliteMobileNodeStateStore Open() => BindingStores.OpenMobileNode(DatabasePath, _directory.MasterKeyPath);

    private static byte[] Secret(byte fill) => Enumerable.Repeat(fill, KeyLengths.Secret).ToArray();

    private static MobileNodeKeys FullKeys() => new(
        new GenerationRecord(new Generation(uint.MaxValue), Secret(0xA5), new Spi(0x7FFF_FFFE), new Spi(300), EspSuite.AesCbc128HmacSha256, true,
            new DateTimeOffset(2026, 11, 22, 1, 2, 3, TimeSpan.Zero), 3_000_000_000)
        {
            ControlReceiveRightEdge = 12,
            DataReceiveRightEdge = 1 << 30,
            Reference = new KeyReference(Guid.Parse("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"), "KME_MN|x"),
        },
        new GenerationRecord(new Generation(uint.MaxValue - 1), Secret(0x5A), new Spi(256), new Spi(257), EspSuite.AesGcm256, false,
            new DateTimeOffset(2026, 11, 21, 0, 0, 0, TimeSpan.Zero), 8192)
        {
            ControlReceiveRightEdge = uint.MaxValue,
            DataReceiveRightEdge = 0,
        })
    {
        InitAnswer = new Generation(uint.MaxValue - 1),
    };

    private void Sql(string sql)
    {
        using var connection = new SqliteConnection($"Data Source={DatabasePath};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private void SaveFull()
    {
        using var store = Open();
        store.Save(FullState, FullKeys());
    }

    private BindingStoreException OpenFails() => Assert.Throws<BindingStoreException>(() => Open().Dispose());

    [Fact]
    public void SaveThenReopen_EveryFieldAndBothGenerations_RoundTrip()
    {
        var keys = FullKeys();
        using (var store = Open())
        {
            Assert.Equal(default, store.Load());
            Assert.Null(store.LoadKeys());
            store.Save(FullState, keys);
        }
        // Save took ownership of the secrets and zeroed them once written.
        Assert.All(keys.Newest.Secret, b => Assert.Equal(0, b));

        using var reopened = Open();
        var loaded = reopened.LoadKeys();

        Assert.Equal(FullState, reopened.Load());
        Assert.NotNull(loaded);
        var expected = FullKeys();
        Assert.Equal(expected.InitAnswer, loaded.InitAnswer);
        Assert.Equal(expected.Newest with { Secret = [] }, loaded.Newest with { Secret = [] });
        Assert.Equal(expected.Previous! with { Secret = [] }, loaded.Previous! with { Secret = [] });
        Assert.Equal(Secret(0xA5), loaded.Newest.Secret);
        Assert.Equal(Secret(0x5A), loaded.Previous!.Secret);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(DatabasePath));
    }

    [Fact]
    public void SaveWithoutKeys_AfterKeys_DropsTheGenerationRows()
    {
        SaveFull();
        using (var store = Open())
        {
            store.Save(new MobileNodeState(3, 4, 5), null);
        }

        using var reopened = Open();

        Assert.Equal(new MobileNodeState(3, 4, 5), reopened.Load());
        Assert.Null(reopened.LoadKeys());
    }

    [Fact]
    public void SecretBytes_NotInTheFile()
    {
        SaveFull();
        var bytes = File.ReadAllBytes(DatabasePath).Concat(File.Exists(DatabasePath + "-wal") ? File.ReadAllBytes(DatabasePath + "-wal") : []).ToArray();

        Assert.Equal(-1, bytes.AsSpan().IndexOf(Secret(0xA5)));
        Assert.Equal(-1, bytes.AsSpan().IndexOf(Secret(0x5A)));
    }

    [Fact]
    public void RolledBackEpoch_Open_RefusedNamingTheRow()
    {
        SaveFull();
        Sql("UPDATE mn_state SET init_epoch = 1");

        Assert.Contains("mn_state(id=1)", OpenFails().Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("next_sequence = 1")]
    [InlineData("ik_reserved = 0")]
    [InlineData("ik_control_edge = 0")]
    [InlineData("awaiting_init = 0")]
    [InlineData("init_answer = NULL")]
    public void EditedStateColumn_Open_RefusedNamingTheRow(string assignment)
    {
        SaveFull();
        Sql($"UPDATE mn_state SET {assignment}");

        Assert.Contains("mn_state(id=1)", OpenFails().Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("transmit_reserved = 0", "newest")]
    [InlineData("control_edge = 0", "newest")]
    [InlineData("spi_ha_to_mn = 301", "newest")]
    [InlineData("key_id = NULL, key_source = NULL", "newest")]
    [InlineData("generation = 5", "previous")]
    [InlineData("secret = substr(secret, 1, 20) || X'FF' || substr(secret, 22)", "previous")]
    public void EditedGenerationRow_Open_RefusedNamingTheRow(string assignment, string slot)
    {
        SaveFull();
        Sql($"UPDATE mn_generations SET {assignment} WHERE slot = {(slot == "newest" ? 0 : 1)}");

        Assert.Contains($"mn_generations(slot={slot})", OpenFails().Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SecretsSwappedBetweenSlots_Open_Refused()
    {
        SaveFull();
        Sql("""
            UPDATE mn_generations SET secret = CASE slot WHEN 0 THEN (SELECT secret FROM mn_generations WHERE slot = 1)
                                                     ELSE (SELECT secret FROM mn_generations WHERE slot = 0) END
            """);

        Assert.Contains("mn_generations(slot=", OpenFails().Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DeletedPreviousRow_Open_RefusedAsNotMatchingTheState()
    {
        SaveFull();
        Sql("DELETE FROM mn_generations WHERE slot = 1");

        Assert.Contains("do not match mn_state(id=1)", OpenFails().Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WrongMasterKey_Open_RefusedNamingTheFile()
    {
        SaveFull();
        var other = Path.Combine(_directory.Path, "other.key");
        MasterKey.Create(other);

        var error = Assert.Throws<BindingStoreException>(() => BindingStores.OpenMobileNode(DatabasePath, other).Dispose());

        Assert.Contains($"does not open '{DatabasePath}'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Schema1Row_Open_MigratedAfterItsSealIsChecked()
    {
        // Write a schema-1 file (one sealed mobile_node row, no meta table) with the same master key.
        using (var key = MasterKey.Load(_directory.MasterKeyPath))
        {
            var seal = new RowSeal(key).Seal([], "mobile_node|1|5|10|4096|seal");
            using var connection = new SqliteConnection($"Data Source={DatabasePath};Pooling=False");
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = """
                CREATE TABLE mobile_node (id INTEGER PRIMARY KEY CHECK (id = 1), init_epoch INTEGER NOT NULL,
                    next_sequence INTEGER NOT NULL, ik_reserved INTEGER NOT NULL, seal BLOB NOT NULL);
                INSERT INTO mobile_node VALUES (1, 5, 10, 4096, $seal);
                """;
            command.Parameters.AddWithValue("$seal", seal);
            command.ExecuteNonQuery();
        }
        File.SetUnixFileMode(DatabasePath, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        using var store = Open();

        Assert.Equal(new MobileNodeState(5, 10, 4096), store.Load());
        Assert.Null(store.LoadKeys());
    }

    [Fact]
    public void VolatileStore_KeepsCountersButNeverASecondCopyOfTheKeys()
    {
        var store = BindingStores.VolatileMobileNode();
        var keys = FullKeys();

        store.Save(FullState, keys);

        Assert.Equal(FullState, store.Load());
        Assert.Null(store.LoadKeys());
        Assert.All(keys.Newest.Secret, b => Assert.Equal(0, b));
        Assert.All(keys.Previous!.Secret, b => Assert.Equal(0, b));
    }

    public void Dispose() => _directory.Dispose();
}
