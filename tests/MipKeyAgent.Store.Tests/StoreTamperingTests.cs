namespace MipKeyAgent.Store.Tests;

/// <summary>
/// A store that was edited, corrupted or opened with the wrong key is refused at open with a
/// <see cref="BindingStoreException"/> naming the file or row; nothing else is thrown.
/// </summary>
public sealed class StoreTamperingTests : IDisposable
{
    private static readonly Ipv6Address Home = Ipv6Address.Parse("2001:db8:2::7");
    private static readonly Ipv6Address Other = Ipv6Address.Parse("2001:db8:2::8");
    private readonly StoreDirectory _directory = new();

    public StoreTamperingTests()
    {
        using var store = _directory.Open();
        store.Save(SqliteBindingStoreTests.FullRecord(Home));
        store.Save(SqliteBindingStoreTests.FullRecord(Other));
        store.SaveInitializationSequenceReserved(Home, 4096);
    }

    private void Sql(string sql) => _directory.Execute(sql);

    private BindingStoreException OpenFails() => Assert.Throws<BindingStoreException>(() => _directory.Open().Dispose());

    [Fact]
    public void FlippedSecretByte_Open_RefusedNamingTheRow()
    {
        Sql("UPDATE generations SET secret = substr(secret, 1, 20) || X'FF' || substr(secret, 22) WHERE home_address = '2001:db8:2::8' AND slot = 1");

        var error = OpenFails();

        Assert.Contains("generations(home_address=2001:db8:2::8, slot=previous)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BindingSealStoredAsText_Open_RefusedAsMissingNamingTheRow()
    {
        Sql("UPDATE bindings SET seal = CAST(seal AS TEXT) WHERE home_address = '2001:db8:2::8'");

        var error = OpenFails();

        Assert.Contains("bindings(home_address=2001:db8:2::8): sealed column missing or truncated", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CareOfNotAnIpv6Address_Open_RefusedNamingTheRow()
    {
        Sql("UPDATE bindings SET care_of = '192.0.2.1' WHERE home_address = '2001:db8:2::8'");

        var error = OpenFails();

        Assert.Contains("bindings(home_address=2001:db8:2::8): care_of is not an IPv6 address", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GenerationRowDeleted_Open_RefusedNamingTheBinding()
    {
        Sql("DELETE FROM generations WHERE home_address = '2001:db8:2::7' AND slot = 1");

        var error = OpenFails();

        Assert.Contains("bindings(home_address=2001:db8:2::7): fails authentication", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReservationRaised_Open_RefusedNamingTheRow()
    {
        Sql("UPDATE ik_reservations SET reserved = 8192 WHERE home_address = '2001:db8:2::7'");

        var error = OpenFails();

        Assert.Contains("ik_reservations(home_address=2001:db8:2::7): fails authentication", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WrongMasterKey_Open_RefusedNamingTheDatabase()
    {
        string otherKey = Path.Combine(_directory.Path, "other.key");
        MasterKey.Create(otherKey);

        var error = Assert.Throws<BindingStoreException>(() => BindingStores.Open(_directory.DatabasePath, otherKey).Dispose());

        Assert.Contains("does not open", error.Message, StringComparison.Ordinal);
        Assert.Contains(_directory.DatabasePath, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NotASqliteFile_Open_ClearError()
    {
        string path = Path.Combine(_directory.Path, "garbage.db");
        File.WriteAllText(path, "this is not a database, just text long enough to look like a header ..................................");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        var error = Assert.Throws<BindingStoreException>(() => BindingStores.Open(path, _directory.MasterKeyPath).Dispose());

        Assert.Contains(path, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MasterKeyReadableByGroup_Open_RefusedNamingTheKeyFile()
    {
        File.SetUnixFileMode(_directory.MasterKeyPath, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);

        var error = OpenFails();

        Assert.Contains(_directory.MasterKeyPath, error.Message, StringComparison.Ordinal);
        Assert.Contains("0640", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DatabaseReadableByWorld_Open_RefusedNamingTheDatabase()
    {
        File.SetUnixFileMode(_directory.DatabasePath, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);

        var error = OpenFails();

        Assert.Contains(_directory.DatabasePath, error.Message, StringComparison.Ordinal);
        Assert.Contains("0604", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingMasterKey_Open_RefusedNamingTheFile()
    {
        string missing = Path.Combine(_directory.Path, "missing.key");

        var error = Assert.Throws<BindingStoreException>(() => BindingStores.Open(_directory.DatabasePath, missing).Dispose());

        Assert.Contains(missing, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MasterKeyNotHex_Open_Refused()
    {
        File.WriteAllText(_directory.MasterKeyPath, new string('z', 64));

        Assert.Contains("hex", OpenFails().Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MasterKeyCreate_ExistingFile_NotOverwritten()
    {
        string before = File.ReadAllText(_directory.MasterKeyPath);

        Assert.ThrowsAny<IOException>(() => MasterKey.Create(_directory.MasterKeyPath));

        Assert.Equal(before, File.ReadAllText(_directory.MasterKeyPath));
    }

    public void Dispose() => _directory.Dispose();
}
