namespace MipKeyAgent.Store.Tests;

/// <summary>
/// The MN store's rollback anchor: an older copy of the node's database (lower Init Epoch, lower IK
/// or generation reservation, or a generation the node dropped since) is refused; the override
/// raises the epoch and IK reservation and drops the keys; a newer database, a torn tail and a store
/// written before anchors existed open.
/// </summary>
public sealed class MobileNodeAnchorTests : IDisposable
{
    private readonly StoreDirectory _directory = new();

    private string DatabasePath => Path.Combine(_directory.Path, "mn.db");

    private string AnchorPath => BindingStores.DefaultAnchorPath(DatabasePath, _directory.MasterKeyPath);

    private SqliteMobileNodeStateStore Open(bool acceptRollback = false) => BindingStores.OpenMobileNode(DatabasePath, _directory.MasterKeyPath, acceptRollback);

    private static MobileNodeState State(ulong epoch, uint ikReserved) => new(epoch, 7, ikReserved);

    private static GenerationRecord Generation(uint number, uint reserved) => new(new Generation(number), Enumerable.Repeat((byte)number, KeyLengths.Secret).ToArray(),
        new Spi(1000 + number), new Spi(2000 + number), EspSuite.AesGcm256, true, new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero), reserved);

    private static MobileNodeKeys Keys(uint newest, uint reserved) => new(Generation(newest, reserved), newest > 1 ? Generation(newest - 1, 4096) : null);

    private void Save(MobileNodeState state, MobileNodeKeys? keys)
    {
        using var store = Open();
        store.Save(state, keys);
    }

    private void Copy(string from, string to)
    {
        foreach (var suffix in new[] { "", "-wal", "-shm" })
        {
            File.Delete(to + suffix);
            if (File.Exists(from + suffix))
            {
                File.Copy(from + suffix, to + suffix);
            }
        }
    }

    private BindingStoreException OpenFails() => Assert.Throws<BindingStoreException>(() => Open().Dispose());

    [Fact]
    public void OlderCopyWithALowerEpoch_Open_RefusedThenOverrideRaisesEpochAndReservationAndDropsKeys()
    {
        Save(State(3, 8192), Keys(5, 4096));
        Copy(DatabasePath, DatabasePath + ".old");
        Save(State(4, 12288), null);
        Copy(DatabasePath + ".old", DatabasePath);

        var error = OpenFails();

        Assert.Contains(DatabasePath, error.Message, StringComparison.Ordinal);
        Assert.Contains(AnchorPath, error.Message, StringComparison.Ordinal);
        Assert.Contains("Init Epoch: 3 in the database, 4 anchored", error.Message, StringComparison.Ordinal);
        Assert.Contains("--accept-store-rollback", error.Message, StringComparison.Ordinal);
        using (var accepted = Open(acceptRollback: true))
        {
            Assert.Equal(4ul, accepted.Load().InitEpoch);
            Assert.Equal(12288u, accepted.Load().InitializationSequenceReserved);
            Assert.Null(accepted.LoadKeys());
        }
        Open().Dispose();
    }

    [Fact]
    public void OlderCopyWithALowerGenerationReservation_Open_Refused()
    {
        Save(State(3, 8192), Keys(5, 4096));
        Copy(DatabasePath, DatabasePath + ".old");
        Save(State(3, 8192), Keys(5, 8192));
        Copy(DatabasePath + ".old", DatabasePath);

        Assert.Contains("sequence reservation of g5: 4096 in the database, 8192 anchored", OpenFails().Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OlderCopyHoldingAGenerationDroppedSince_Open_Refused()
    {
        Save(State(3, 8192), Keys(5, 4096));
        Copy(DatabasePath, DatabasePath + ".old");
        Save(State(3, 8192), Keys(6, 4096));
        Save(State(3, 8192), Keys(7, 4096));
        Copy(DatabasePath + ".old", DatabasePath);

        Assert.Contains("g4 held in the database, dropped for g7 (anchored)", OpenFails().Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DatabaseNewerThanTheAnchor_Open_AcceptedAndAnchored()
    {
        // A crash between the commit and the append leaves the database ahead: a new epoch and generations.
        Save(State(3, 8192), Keys(5, 4096));
        using (var key = MasterKey.Load(_directory.MasterKeyPath))
        using (var unanchored = SqliteMobileNodeStateStore.Open(DatabasePath, key))
        {
            unanchored.Save(State(4, 12288), Keys(2, 4096));
        }

        using (var store = Open())
        {
            Assert.Null(store.AnchorNotice);
            Assert.Equal(4ul, store.Load().InitEpoch);
        }
        Copy(DatabasePath, DatabasePath + ".old");
        Save(State(5, 12288), null);
        Copy(DatabasePath + ".old", DatabasePath);
        Assert.Contains("Init Epoch: 4 in the database, 5 anchored", OpenFails().Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TornTailAndEditedRecord_Open_TornIgnoredEditRefused()
    {
        Save(State(3, 8192), Keys(5, 4096));
        Save(State(3, 12288), Keys(5, 4096));
        Save(State(3, 16384), Keys(5, 4096));
        AnchorFile.Append(AnchorPath, new byte[AnchorLog.RecordLength / 2 + 3]);
        using (var store = Open())
        {
            Assert.Contains("ignored a torn last record", store.AnchorNotice, StringComparison.Ordinal);
            store.Save(State(3, 20480), Keys(5, 4096));
            store.Save(State(3, 24576), Keys(5, 4096));
        }
        int records = AnchorFile.Records(AnchorPath);
        AnchorFile.Flip(AnchorPath, AnchorFile.InRecord(records - 2));

        Assert.Contains($"record {records - 2} of {records} fails authentication", OpenFails().Message, StringComparison.Ordinal);
    }

    [Fact]
    public void StoreWrittenWithoutAnAnchor_FirstOpen_AnchorsItThenAMissingAnchorIsRefused()
    {
        using (var key = MasterKey.Load(_directory.MasterKeyPath))
        using (var unanchored = SqliteMobileNodeStateStore.Open(DatabasePath, key))
        {
            unanchored.Save(State(3, 8192), Keys(5, 4096));
        }

        using (var store = Open())
        {
            Assert.Contains("had no rollback anchor", store.AnchorNotice, StringComparison.Ordinal);
        }
        File.Delete(AnchorPath);

        Assert.Contains("is missing", OpenFails().Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SaveThatMovesNoMark_NothingAppended()
    {
        using var store = Open();
        store.Save(State(3, 8192), Keys(5, 4096));
        long anchored = new FileInfo(AnchorPath).Length;

        store.Save(new MobileNodeState(3, 8, 8192) { InitializationControlReceiveRightEdge = 40 }, Keys(5, 4096));
        Assert.Equal(anchored, new FileInfo(AnchorPath).Length);
        store.Save(State(3, 12288), Keys(5, 4096));
        Assert.Equal(anchored + AnchorLog.RecordLength, new FileInfo(AnchorPath).Length);
    }

    public void Dispose() => _directory.Dispose();
}
