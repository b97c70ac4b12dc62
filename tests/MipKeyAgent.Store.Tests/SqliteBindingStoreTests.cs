using Microsoft.Data.Sqlite;
using MipKeyAgent.Protocol.HomeAgent;
using MipKeyAgent.Protocol.Keys;
using MipKeyAgent.Esp;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Store.Tests;

/// <summary>SqliteBindingStore: every field round-trips through the file; retired SPIs and IK reservations outlive bindings.</summary>
public sealed class SqliteBindingStoreTests : IDisposable
{
    private static readonly Ipv6Address Home = Ipv6Address.Parse("2001:db8:2::7");
    private readonly StoreDirectory _directory = new();

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
    public void SaveThenReopen_EveryField_RoundTrips()
    {
        var expected = FullRecord(Home);
        using (var store = _directory.Open())
        {
            store.Save(CopyOf(expected));
        }

        using var reopened = _directory.Open();
        var loaded = reopened.Load(Home)!;

        Assert.Equal(expected with { Newest = null, Previous = null }, loaded with { Newest = null, Previous = null });
        AssertGeneration(expected.Newest!, loaded.Newest!);
        AssertGeneration(expected.Previous!, loaded.Previous!);
    }

    [Fact]
    public void SaveThenReopen_NoBindingNoGenerations_NullsRoundTrip()
    {
        var expected = new BindingRecord(Home, null, DateTimeOffset.UnixEpoch, null, null, default, default, null, null, null, false);
        using (var store = _directory.Open())
        {
            store.Save(expected);
        }

        using var reopened = _directory.Open();

        Assert.Equal(expected, reopened.Load(Home));
        Assert.Null(reopened.Load(Ipv6Address.Parse("2001:db8:2::8")));
    }

    [Fact]
    public void Save_Replace_OldGenerationRowsGone()
    {
        using var store = _directory.Open();
        store.Save(CopyOf(FullRecord(Home)));
        var replacement = FullRecord(Home) with { Previous = null, LastSequence = 3 };

        store.Save(replacement with { Newest = replacement.Newest! with { Secret = Secret(9) } });

        var loaded = store.Load(Home)!;
        Assert.Null(loaded.Previous);
        Assert.Equal((ushort)3, loaded.LastSequence);
        Assert.Equal(Secret(9), loaded.Newest!.Secret);
    }

    [Fact]
    public void Save_TakesOwnershipOfSecrets_PlainCopiesZeroed()
    {
        using var store = _directory.Open();
        var record = CopyOf(FullRecord(Home));

        store.Save(record);

        Assert.All(record.Newest!.Secret, b => Assert.Equal(0, b));
        Assert.All(record.Previous!.Secret, b => Assert.Equal(0, b));
    }

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
    public void RetiredSpisAndIkReservation_SurviveReopenAndLoseBindings()
    {
        using (var store = _directory.Open())
        {
            store.Save(CopyOf(FullRecord(Home)));
            store.SaveRetiredSpis([500, 501, 0x7fff_ffff]);
            store.SaveRetiredSpis([501, 502]);
            store.SaveInitializationSequenceReserved(Home, 12288);
            store.LoseBindings();
        }

        using var reopened = _directory.Open();

        Assert.Null(reopened.Load(Home));
        Assert.Equal([500u, 501u, 502u, 0x7fff_ffffu], reopened.LoadRetiredSpis().Order());
        Assert.Equal(12288u, reopened.LoadInitializationSequenceReserved(Home));
        Assert.Equal(0u, reopened.LoadInitializationSequenceReserved(Ipv6Address.Parse("2001:db8:2::8")));
    }

    [Fact]
    public void Remove_Binding_GoneAfterReopen()
    {
        using (var store = _directory.Open())
        {
            store.Save(CopyOf(FullRecord(Home)));
            store.Remove(Home);
        }

        using var reopened = _directory.Open();
        Assert.Null(reopened.Load(Home));
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

    private static void AssertGeneration(GenerationRecord expected, GenerationRecord actual)
    {
        Assert.Equal(expected.Secret, actual.Secret);
        Assert.Equal(expected with { Secret = [] }, actual with { Secret = [] }, new GenerationComparer());
    }

    private sealed class GenerationComparer : IEqualityComparer<GenerationRecord>
    {
        public bool Equals(GenerationRecord? x, GenerationRecord? y) =>
            x is not null && y is not null && x.Generation == y.Generation && x.SpiMnToHa == y.SpiMnToHa && x.SpiHaToMn == y.SpiHaToMn
            && x.Suite == y.Suite && x.Confirmed == y.Confirmed && x.CreatedAt == y.CreatedAt
            && x.TransmitSequenceReserved == y.TransmitSequenceReserved && x.ControlReceiveRightEdge == y.ControlReceiveRightEdge
            && x.DataReceiveRightEdge == y.DataReceiveRightEdge;

        public int GetHashCode(GenerationRecord obj) => obj.Generation.GetHashCode();
    }

    public void Dispose() => _directory.Dispose();
}
