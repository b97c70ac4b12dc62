namespace MipKeyAgent.Store.Tests;

/// <summary>
/// PROTOCOL.md section 8.1 for agents without a durable binding store: IK counter reservations in
/// a small file that outlives the process; an IK whose counters are lost is refused.
/// </summary>
public sealed class IkCounterFileTests : IDisposable
{
    private static readonly Ipv6Address Home1 = Ipv6Address.Parse("2001:db8:2::1");
    private static readonly Ipv6Address Home2 = Ipv6Address.Parse("2001:db8:2::2");
    private static readonly byte[] Key1 = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();
    private static readonly byte[] Key2 = Enumerable.Range(101, 32).Select(i => (byte)i).ToArray();

    private readonly string _directory = Directory.CreateTempSubdirectory("mipkey-ik-counters-").FullName;

    private string Provisioning => Path.Combine(_directory, "ha.conf");

    private string CounterPath => Provisioning + IkCounterFile.CounterSuffix;

    private string UsedPath => Provisioning + IkCounterFile.UsedSuffix;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void Reserve_Reopened_ResumesAtTheReservationInOwnerOnlyFiles()
    {
        var file = IkCounterFile.Open(Provisioning);
        Assert.Null(file.LostReason(Home1, Key1));
        Assert.Equal(0u, file.Reserved(Home1, Key1));

        file.Reserve(Home1, Key1, 4096);
        file.Reserve(Home1, Key1, 8192);
        file.Reserve(Home2, Key2, 4096);
        var reopened = IkCounterFile.Open(Provisioning);

        Assert.Equal(8192u, reopened.Reserved(Home1, Key1));
        Assert.Equal(4096u, reopened.Reserved(Home2, Key2));
        Assert.Null(reopened.LostReason(Home1, Key1));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(CounterPath));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(UsedPath));
        Assert.Empty(Directory.GetFiles(_directory, "*.tmp"));
        // The files name keys by fingerprint, never by their octets.
        foreach (var path in new[] { CounterPath, UsedPath })
        {
            Assert.DoesNotContain(Convert.ToHexStringLower(Key1), File.ReadAllText(path), StringComparison.Ordinal);
        }
    }

    [Fact]
    public void CounterFileDeleted_UsedKey_LostAndNamesBothFiles()
    {
        IkCounterFile.Open(Provisioning).Reserve(Home1, Key1, 4096);
        File.Delete(CounterPath);

        var reopened = IkCounterFile.Open(Provisioning);

        var reason = reopened.LostReason(Home1, Key1);
        Assert.NotNull(reason);
        Assert.Contains("missing", reason, StringComparison.Ordinal);
        Assert.Contains(UsedPath, reason, StringComparison.Ordinal);
        // Another node's key that never sent anything is new, and starts at 1.
        Assert.Null(reopened.LostReason(Home2, Key2));
    }

    [Theory]
    [InlineData("flip")]
    [InlineData("truncate")]
    [InlineData("garbage")]
    public void CounterFileDamaged_UsedKey_Lost(string damage)
    {
        IkCounterFile.Open(Provisioning).Reserve(Home1, Key1, 4096);
        var bytes = File.ReadAllBytes(CounterPath);
        switch (damage)
        {
            case "flip":
                // The reservation lowered: still a well-formed line, caught by the checksum.
                bytes = System.Text.Encoding.UTF8.GetBytes(System.Text.Encoding.UTF8.GetString(bytes).Replace(" 4096\n", " 4095\n", StringComparison.Ordinal));
                break;
            case "truncate":
                bytes = bytes[..(bytes.Length / 2)];
                break;
            default:
                bytes = "mipkey-ik-counters-v1\nik x y z\nsha256 00\n"u8.ToArray();
                break;
        }
        File.WriteAllBytes(CounterPath, bytes);

        var reason = IkCounterFile.Open(Provisioning).LostReason(Home1, Key1);

        Assert.NotNull(reason);
        Assert.Contains("damaged", reason, StringComparison.Ordinal);
    }

    [Fact]
    public void RotatedKey_LostCountersOfTheOldOne_NewKeyIsServedFromOne()
    {
        IkCounterFile.Open(Provisioning).Reserve(Home1, Key1, 4096);
        File.Delete(CounterPath);

        var file = IkCounterFile.Open(Provisioning);

        Assert.NotNull(file.LostReason(Home1, Key1));
        Assert.Null(file.LostReason(Home1, Key2));
        Assert.Equal(0u, file.Reserved(Home1, Key2));
    }

    [Fact]
    public void UsedListDamaged_KeyWithoutReservationLost_KeyWithReservationKept()
    {
        var file = IkCounterFile.Open(Provisioning);
        file.Reserve(Home1, Key1, 4096);
        File.WriteAllText(UsedPath, "mipkey-ik-used-v1\nsomething\n");

        var reopened = IkCounterFile.Open(Provisioning);

        Assert.Null(reopened.LostReason(Home1, Key1));
        Assert.Equal(4096u, reopened.Reserved(Home1, Key1));
        Assert.NotNull(reopened.LostReason(Home2, Key2));
    }

    [Fact]
    public void CounterFileReadableByOthers_Refused()
    {
        IkCounterFile.Open(Provisioning).Reserve(Home1, Key1, 4096);
        File.SetUnixFileMode(CounterPath, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);

        var error = Assert.Throws<BindingStoreException>(() => IkCounterFile.Open(Provisioning));
        Assert.Contains("chmod 600", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MobileNodeStore_Restart_KeepsEpochSequenceAndReservationButNoKeys()
    {
        var store = new IkCounterMobileNodeStateStore(IkCounterFile.Open(Provisioning), "mn1", Home1, Key1);
        var keys = new MobileNodeKeys(new GenerationRecord(new Generation(1), new byte[KeyLengths.Secret], new Spi(300), new Spi(301),
            EspSuite.AesGcm256, true, DateTimeOffset.UnixEpoch, 4096), null);
        store.Save(new MobileNodeState(3, 17, 4096) { AwaitingInit = true }, keys);
        store.Save(new MobileNodeState(3, 18, 4096), keys);

        var restarted = new IkCounterMobileNodeStateStore(IkCounterFile.Open(Provisioning), "mn1", Home1, Key1);

        Assert.Equal(new MobileNodeState(3, 18, 4096), restarted.Load());
        Assert.Null(restarted.LoadKeys());
    }

    [Fact]
    public void MobileNodeStore_CountersLost_RefusesWithTheNodeAndRotateIk()
    {
        var store = new IkCounterMobileNodeStateStore(IkCounterFile.Open(Provisioning), "mn1", Home1, Key1);
        store.Save(new MobileNodeState(1, 1, 4096), null);
        File.Delete(CounterPath);

        var error = Assert.Throws<BindingStoreException>(() => new IkCounterMobileNodeStateStore(IkCounterFile.Open(Provisioning), "mn1", Home1, Key1));

        Assert.Contains("mn1 (2001:db8:2::1)", error.Message, StringComparison.Ordinal);
        Assert.Contains("mipkey provision rotate-ik", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void BindingStore_LostBindings_IkReservationSurvivesTheProcess()
    {
        var nodes = new[] { new MobileNodeProvisioning(Home1, Key1, new Spi(1000), new Spi(1001)) };
        var store = new IkCounterBindingStore(IkCounterFile.Open(Provisioning), nodes);
        store.SaveInitializationSequenceReserved(Home1, 12_288);

        var restarted = new IkCounterBindingStore(IkCounterFile.Open(Provisioning), nodes);

        Assert.Equal(12_288u, restarted.LoadInitializationSequenceReserved(Home1));
        Assert.Null(restarted.LostReason(nodes[0]));
        File.Delete(CounterPath);
        var lost = new IkCounterBindingStore(IkCounterFile.Open(Provisioning), nodes);
        Assert.NotNull(lost.LostReason(nodes[0]));
        // Nothing may write a reservation that would make the lost key look resumable.
        Assert.Throws<InvalidOperationException>(() => lost.ReserveAhead(nodes, 4096));
        Assert.Throws<InvalidOperationException>(() => lost.SaveInitializationSequenceReserved(Home1, 20_000));
        Assert.NotNull(new IkCounterBindingStore(IkCounterFile.Open(Provisioning), nodes).LostReason(nodes[0]));
    }

    [Fact]
    public void BindingStore_ReserveAhead_OneWriteForEveryNodeAndTheEngineResumesFromTheFile()
    {
        var nodes = new[]
        {
            new MobileNodeProvisioning(Home1, Key1, new Spi(1000), new Spi(1001)),
            new MobileNodeProvisioning(Home2, Key2, new Spi(1002), new Spi(1003)),
        };
        IkCounterFile.Open(Provisioning).Reserve(Home1, Key1, 4096);
        var store = new IkCounterBindingStore(IkCounterFile.Open(Provisioning), nodes);

        store.ReserveAhead(nodes, 4096);

        Assert.Equal(4096u, store.LoadInitializationSequenceReserved(Home1));
        Assert.Equal(0u, store.LoadInitializationSequenceReserved(Home2));
        var reopened = IkCounterFile.Open(Provisioning);
        Assert.Equal(8192u, reopened.Reserved(Home1, Key1));
        Assert.Equal(4096u, reopened.Reserved(Home2, Key2));
    }
}
