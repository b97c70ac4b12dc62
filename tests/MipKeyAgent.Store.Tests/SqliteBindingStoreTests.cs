namespace MipKeyAgent.Store.Tests;

/// <summary>SqliteBindingStore: the store contract on a file, and what is the file's own (mode, journal, locking).</summary>
public sealed class SqliteBindingStoreTests : BindingStoreContract<SqliteBindingStore>, IDisposable
{
    private readonly StoreDirectory _directory = new();

    protected override SqliteBindingStore Open() => _directory.Open();

    protected override void LoseBindings(SqliteBindingStore store) => store.LoseBindings();

    protected override void DropPreloaded(SqliteBindingStore store) => store.DropPreloaded();

    protected override void Sql(string sql) => _directory.Execute(sql);

    internal static byte[] Secret(byte seed)
    {
        var secret = new byte[32];
        for (int i = 0; i < secret.Length; i++)
        {
            secret[i] = (byte)(seed + (i * 7));
        }
        return secret;
    }

    internal static BindingRecord FullRecord(Ipv6Address home) => new(
        home, Ipv6Address.Parse("2001:db8:100::9"), new DateTimeOffset(2030, 1, 2, 3, 4, 5, TimeSpan.Zero).AddTicks(1234567), 65535,
        ulong.MaxValue - 3, new Generation(7), new Generation(8),
        new GenerationRecord(new Generation(8), Secret(1), new Spi(0x7fff_fff0), new Spi(300), EspSuite.AesCbc128HmacSha256, false,
            new DateTimeOffset(2029, 5, 6, 7, 8, 9, TimeSpan.FromHours(2)), uint.MaxValue)
        { ControlReceiveRightEdge = 17, DataReceiveRightEdge = 4_000_000_000 },
        new GenerationRecord(new Generation(7), Secret(100), new Spi(4096), new Spi(4097), EspSuite.AesGcm256, true,
            new DateTimeOffset(2029, 1, 1, 0, 0, 0, TimeSpan.Zero), 8192)
        { ControlReceiveRightEdge = 3, DataReceiveRightEdge = 90 },
        new DateTimeOffset(2030, 6, 1, 0, 0, 0, TimeSpan.Zero), true)
    {
        InitializationControlReceiveRightEdge = 12,
        InitializationDataReceiveRightEdge = uint.MaxValue,
        InitSequence = 65530,
    };

    internal static BindingRecord CopyOf(BindingRecord r) => r with
    {
        Newest = r.Newest! with { Secret = (byte[])r.Newest.Secret.Clone() },
        Previous = r.Previous! with { Secret = (byte[])r.Previous.Secret.Clone() },
    };

    [Fact]
    public void Save_SecretBytes_NeverInTheFilesInPlain()
    {
        using (var store = _directory.Open())
        {
            store.Save(CopyOf(FullRecord(Home)));
        }

        foreach (string file in Directory.GetFiles(_directory.Path, "ha.db*"))
        {
            byte[] content = File.ReadAllBytes(file);
            Assert.Equal(-1, content.AsSpan().IndexOf(Secret(1)));
            Assert.Equal(-1, content.AsSpan().IndexOf(Secret(100)));
        }
    }

    [Fact]
    public void Open_Database_CreatedOwnerOnly()
    {
        using var store = _directory.Open();

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_directory.DatabasePath));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_directory.MasterKeyPath));
        using var connection = new SqliteConnection($"Data Source={_directory.DatabasePath}");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode";
        Assert.Equal("wal", command.ExecuteScalar());
    }

    [Fact]
    public void Open_WhileAnotherWriterHoldsTheLock_RefusedNamingTheFile_AndOpensOnceItIsReleased()
    {
        using (var store = _directory.Open())
        {
            store.Save(CopyOf(FullRecord(Home)));
        }
        using (var writer = new SqliteConnection($"Data Source={_directory.DatabasePath};Pooling=False"))
        {
            writer.Open();
            using var begin = writer.CreateCommand();
            begin.CommandText = "BEGIN IMMEDIATE";
            begin.ExecuteNonQuery();

            // Open reads its three tables under the write lock (one state for both of its connections).
            var error = Assert.Throws<BindingStoreException>(() => _directory.Open().Dispose());
            Assert.Contains(_directory.DatabasePath, error.Message, StringComparison.Ordinal);
            Assert.Contains("locked by another writer", error.Message, StringComparison.Ordinal);
        }

        using var reopened = _directory.Open();
        Assert.Equal(FullRecord(Home).LastSequence, reopened.Load(Home)!.LastSequence);
    }

    public void Dispose() => _directory.Dispose();
}
