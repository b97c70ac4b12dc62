namespace MipKeyAgent.Store.Tests;

/// <summary>
/// What every durable <see cref="IBindingStore"/> does, whichever database holds it: every field round-trips
/// through a reopen; retired SPIs and IK reservations outlive bindings; the records read at open answer the
/// restart's Load calls once and a write after open wins over them; an edited, swapped or deleted row is
/// refused at open naming it. <see cref="SqliteBindingStoreTests"/> and <see cref="PostgresBindingStoreTests"/>
/// run it, each on its own database.
/// </summary>
public abstract class BindingStoreContract<TStore>
    where TStore : class, IBindingStore, IDisposable
{
    protected static readonly Ipv6Address Home = Ipv6Address.Parse("2001:db8:2::7");
    protected static readonly Ipv6Address Other = Ipv6Address.Parse("2001:db8:2::8");

    /// <summary>Opens the test's database (the same one each time: a reopen is a restart).</summary>
    protected abstract TStore Open();

    protected abstract void LoseBindings(TStore store);

    protected abstract void DropPreloaded(TStore store);

    /// <summary>Runs <paramref name="sql"/> on the database behind the store's back (tampering).</summary>
    protected abstract void Sql(string sql);

    private static byte[] Secret(byte seed) => SqliteBindingStoreTests.Secret(seed);

    private static BindingRecord FullRecord(Ipv6Address home) => SqliteBindingStoreTests.FullRecord(home);

    private static BindingRecord CopyOf(BindingRecord record) => SqliteBindingStoreTests.CopyOf(record);

    private void SeedTwoNodes()
    {
        using var store = Open();
        store.Save(FullRecord(Home));
        store.Save(FullRecord(Other));
        store.SaveInitializationSequenceReserved(Home, 4096);
    }

    private BindingStoreException OpenFails() => Assert.Throws<BindingStoreException>(() => Open().Dispose());

    [Fact]
    public void SaveThenReopen_EveryField_RoundTrips()
    {
        var expected = FullRecord(Home);
        using (var store = Open())
        {
            store.Save(CopyOf(expected));
        }

        using var reopened = Open();
        var loaded = reopened.Load(Home)!;

        Assert.Equal(expected with { Newest = null, Previous = null }, loaded with { Newest = null, Previous = null });
        AssertGeneration(expected.Newest!, loaded.Newest!);
        AssertGeneration(expected.Previous!, loaded.Previous!);
    }

    [Fact]
    public void SaveThenReopen_NoBindingNoGenerations_NullsRoundTrip()
    {
        var expected = new BindingRecord(Home, null, DateTimeOffset.UnixEpoch, null, null, default, default, null, null, null, false);
        using (var store = Open())
        {
            store.Save(expected);
        }

        using var reopened = Open();

        Assert.Equal(expected, reopened.Load(Home));
        Assert.Null(reopened.Load(Ipv6Address.Parse("2001:db8:2::8")));
    }

    [Fact]
    public void Save_Replace_OldGenerationRowsGone()
    {
        using var store = Open();
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
        using var store = Open();
        var record = CopyOf(FullRecord(Home));

        store.Save(record);

        Assert.All(record.Newest!.Secret, b => Assert.Equal(0, b));
        Assert.All(record.Previous!.Secret, b => Assert.Equal(0, b));
    }

    [Fact]
    public void RetiredSpisAndIkReservation_SurviveReopenAndLoseBindings()
    {
        using (var store = Open())
        {
            store.Save(CopyOf(FullRecord(Home)));
            store.SaveRetiredSpis([500, 501, 0x7fff_ffff]);
            store.SaveRetiredSpis([501, 502]);
            store.SaveInitializationSequenceReserved(Home, 12288);
            LoseBindings(store);
        }

        using var reopened = Open();

        Assert.Null(reopened.Load(Home));
        Assert.Equal([500u, 501u, 502u, 0x7fff_ffffu], reopened.LoadRetiredSpis().Order());
        Assert.Equal(12288u, reopened.LoadInitializationSequenceReserved(Home));
        Assert.Equal(0u, reopened.LoadInitializationSequenceReserved(Ipv6Address.Parse("2001:db8:2::8")));
    }

    [Fact]
    public void Remove_Binding_GoneAfterReopen()
    {
        using (var store = Open())
        {
            store.Save(CopyOf(FullRecord(Home)));
            store.Remove(Home);
        }

        using var reopened = Open();
        Assert.Null(reopened.Load(Home));
    }

    [Fact]
    public void Reopen_ManyNodes_EachLoadedOnceWithItsOwnStateAndReservation()
    {
        var homes = Enumerable.Range(1, 600).Select(i => new Ipv6Address(Home.Value + (UInt128)i)).ToArray();
        using (var store = Open())
        {
            foreach (var (home, i) in homes.Select((h, i) => (h, i)))
            {
                store.Save(FullRecord(home) with { LastSequence = (ushort)i, Previous = null });
                store.SaveInitializationSequenceReserved(home, (uint)i + 10);
            }
        }

        using var reopened = Open();

        foreach (var (home, i) in homes.Select((h, i) => (h, i)))
        {
            var first = reopened.Load(home)!;
            Assert.Equal((ushort)i, first.LastSequence);
            Assert.Equal(Secret(1), first.Newest!.Secret);
            Assert.Equal((uint)i + 10, reopened.LoadInitializationSequenceReserved(home));
            // The second load reads the file again: a fresh copy, not the array the caller owns (and may have zeroed).
            var second = reopened.Load(home)!;
            Assert.NotSame(first.Newest.Secret, second.Newest!.Secret);
            Assert.Equal(first with { Newest = null }, second with { Newest = null });
        }
    }

    [Fact]
    public void Reopen_SaveBeforeLoad_LoadReturnsTheNewState()
    {
        using (var store = Open())
        {
            store.Save(FullRecord(Home) with { LastSequence = 1 });
            store.Save(FullRecord(Other) with { LastSequence = 1 });
            store.SaveInitializationSequenceReserved(Home, 5);
        }

        using var reopened = Open();
        reopened.Save(FullRecord(Home) with { LastSequence = 2 });
        reopened.SaveInitializationSequenceReserved(Home, 9);
        reopened.Remove(Other);

        Assert.Equal((ushort)2, reopened.Load(Home)!.LastSequence);
        Assert.Equal(9u, reopened.LoadInitializationSequenceReserved(Home));
        Assert.Null(reopened.Load(Other));
    }

    [Fact]
    public void Reopen_DropPreloaded_LoadStillReadsTheFile()
    {
        using (var store = Open())
        {
            store.Save(FullRecord(Home));
        }

        using var reopened = Open();
        DropPreloaded(reopened);

        Assert.Equal(Secret(1), reopened.Load(Home)!.Newest!.Secret);
    }

    [Fact]
    public void EditedGenerationNumber_Open_RefusedNamingTheRow()
    {
        SeedTwoNodes();
        Sql("UPDATE generations SET generation = 99 WHERE home_address = '2001:db8:2::7' AND slot = 0");

        var error = OpenFails();

        Assert.Contains("generations(home_address=2001:db8:2::7, slot=newest)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SecretSwappedBetweenNodes_Open_Refused()
    {
        SeedTwoNodes();
        Sql("""
            UPDATE generations SET secret = (SELECT secret FROM generations WHERE home_address = '2001:db8:2::8' AND slot = 0)
            WHERE home_address = '2001:db8:2::7' AND slot = 0
            """);

        Assert.Contains("2001:db8:2::7", OpenFails().Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SlotsSwapped_Open_Refused()
    {
        SeedTwoNodes();
        Sql("UPDATE generations SET slot = slot + 2 WHERE home_address = '2001:db8:2::7'; UPDATE generations SET slot = 3 - slot WHERE home_address = '2001:db8:2::7'");

        Assert.Contains("generations(home_address=2001:db8:2::7", OpenFails().Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EditedSequenceNumber_Open_RefusedNamingTheBinding()
    {
        SeedTwoNodes();
        Sql("UPDATE bindings SET last_sequence = 1 WHERE home_address = '2001:db8:2::8'");

        Assert.Contains("bindings(home_address=2001:db8:2::8)", OpenFails().Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DeletedGenerationRow_Open_RefusedByTheBindingSeal()
    {
        SeedTwoNodes();
        Sql("DELETE FROM generations WHERE home_address = '2001:db8:2::7' AND slot = 1");

        Assert.Contains("bindings(home_address=2001:db8:2::7)", OpenFails().Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LoweredIkReservation_Open_Refused()
    {
        SeedTwoNodes();
        Sql("UPDATE ik_reservations SET reserved = 0");

        Assert.Contains("ik_reservations(home_address=2001:db8:2::7)", OpenFails().Message, StringComparison.Ordinal);
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
}
