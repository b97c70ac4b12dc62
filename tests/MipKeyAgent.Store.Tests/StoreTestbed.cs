using Microsoft.Extensions.Time.Testing;
using MipKeyAgent.Simulation;

namespace MipKeyAgent.Store.Tests;

internal enum AnchorMode
{
    Checked,
    AcceptRollback,
    None,
}

/// <summary>A temporary directory with a master key file (0600) and a database path; deleted on dispose.</summary>
internal sealed class StoreDirectory : IDisposable
{
    public StoreDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "mipkey-store-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
        MasterKey.Create(MasterKeyPath);
    }

    public string Path { get; }

    public string MasterKeyPath => System.IO.Path.Combine(Path, "master.key");

    public string DatabasePath => System.IO.Path.Combine(Path, "ha.db");

    public string AnchorPath => BindingStores.DefaultAnchorPath(DatabasePath, MasterKeyPath);

    /// <summary>How <see cref="Open"/> opens: with the rollback anchor (the default), with it and the override, or without any anchor.</summary>
    public AnchorMode Anchor { get; set; } = AnchorMode.Checked;

    public SqliteBindingStore Open() => Anchor switch
    {
        AnchorMode.Checked => BindingStores.Open(DatabasePath, MasterKeyPath),
        AnchorMode.AcceptRollback => BindingStores.Open(DatabasePath, MasterKeyPath, acceptRollback: true),
        _ => SqliteBindingStore.Open(DatabasePath, MasterKey.Load(MasterKeyPath), ownsMasterKey: true),
    };

    /// <summary>Copies the database files (as a backup would) to <paramref name="name"/>.</summary>
    public void CopyDatabaseTo(string name)
    {
        foreach (var suffix in new[] { "", "-wal", "-shm" })
        {
            string from = DatabasePath + suffix;
            string to = System.IO.Path.Combine(Path, name + suffix);
            File.Delete(to);
            if (File.Exists(from))
            {
                File.Copy(from, to);
            }
        }
    }

    /// <summary>Puts a copy made by <see cref="CopyDatabaseTo"/> in place of the database (mode kept 0600).</summary>
    public void RestoreDatabaseFrom(string name)
    {
        foreach (var suffix in new[] { "", "-wal", "-shm" })
        {
            string from = System.IO.Path.Combine(Path, name + suffix);
            string to = DatabasePath + suffix;
            File.Delete(to);
            if (File.Exists(from))
            {
                File.Copy(from, to);
                File.SetUnixFileMode(to, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }
        }
    }

    /// <summary>Runs one SQL statement on the database file behind the store's back (tampering, migrations).</summary>
    public void Execute(string sql)
    {
        using var connection = Connect();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    /// <summary>Reads one value from the database file.</summary>
    public object? Scalar(string sql)
    {
        using var connection = Connect();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }

    private SqliteConnection Connect()
    {
        var connection = new SqliteConnection($"Data Source={DatabasePath};Pooling=False");
        connection.Open();
        return connection;
    }

    public void Dispose() => Directory.Delete(Path, recursive: true);
}

/// <summary>
/// One HA on a <see cref="SqliteBindingStore"/> and one MN, run by an <see cref="EngineDriver"/>
/// (a link without delay or loss, a manual clock). <see cref="RestartHomeAgent"/> closes the store and reopens
/// the file, as a process restart does.
/// </summary>
internal sealed class StoreTestbed : IDisposable
{
    public static readonly Ipv6Address HomeAgentAddress = Ipv6Address.Parse("2001:db8:1::1");
    public static readonly Ipv6Address CareOf = Ipv6Address.Parse("2001:db8:100::1");
    private readonly byte[] _inner = new byte[70_000];
    private readonly HomeAgentOptions _options;

    private readonly IKeySource? _keySource;
    private readonly Func<IBindingStore> _openStore;

    /// <param name="keySource">The HA's key source across restarts (default: a new seeded source per start).</param>
    /// <param name="keyResolver">The MN's resolver for key-reference KEY-DISTs.</param>
    public StoreTestbed(StoreDirectory directory, HomeAgentOptions? options = null, IKeySource? keySource = null, IKeyReferenceResolver? keyResolver = null)
        : this(directory.Open, options, keySource, keyResolver)
    {
    }

    /// <param name="openStore">Opens the HA's store at start and at each <see cref="RestartHomeAgent"/> (any durable store).</param>
    public StoreTestbed(Func<IBindingStore> openStore, HomeAgentOptions? options = null, IKeySource? keySource = null, IKeyReferenceResolver? keyResolver = null)
    {
        _openStore = openStore;
        _options = options ?? new HomeAgentOptions { Address = HomeAgentAddress };
        _keySource = keySource;
        var ik = new byte[32];
        new Random(11).NextBytes(ik);
        Provisioning = new MobileNodeProvisioning(Ipv6Address.Parse("2001:db8:2::1"), ik, new Spi(1000), new Spi(1001));
        Store = openStore();
        HomeAgent = NewHomeAgent();
        MobileNode = new MobileNodeEngine(
            new MobileNodeOptions { Provisioning = Provisioning, HomeAgentAddress = HomeAgentAddress, CareOfAddress = CareOf, Mode = _options.Mode },
            Clock, Driver, MobileNodeStore, new SeededKeySource(99), keyResolver: keyResolver);
        Driver.Attach(CareOf, LinkDirection.ToMobileNode, (byte[] d) => MobileNode.Receive(d, _inner));
        Driver.Attach(HomeAgentAddress, LinkDirection.ToHomeAgent, (byte[] d) => HomeAgentResults.Add(HomeAgent.Receive(d, _inner)));
        Driver.AddTimer(() => HomeAgent.NextDeadline, () => HomeAgent.Tick());
        Driver.AddTimer(() => MobileNode.NextDeadline, () => MobileNode.Tick());
    }

    public MobileNodeProvisioning Provisioning { get; }

    public EngineDriver Driver { get; } = new(TestTime.NewClock());

    public FakeTimeProvider Clock => Driver.Clock;

    public IBindingStore Store { get; private set; }

    public InMemoryMobileNodeStateStore MobileNodeStore { get; } = new();

    public HomeAgentEngine HomeAgent { get; private set; }

    public MobileNodeEngine MobileNode { get; }

    public List<ReceiveResult> HomeAgentResults { get; } = [];

    public List<ProtocolEvent> Events { get; } = [];

    public int Seed { get; set; } = 5;

    public HomeAgentNodeView View => HomeAgent.GetNode(Provisioning.HomeAddress)!;

    private HomeAgentEngine NewHomeAgent()
    {
        var engine = new HomeAgentEngine(_options, Clock, _keySource ?? new SeededKeySource(Seed), new SeededSpiSource(Seed++), Driver, Store, Events.Add);
        engine.Provision(Provisioning);
        return engine;
    }

    public void Start()
    {
        MobileNode.Start();
        Driver.Pump();
    }

    /// <summary>A process restart: the engine and the store connection go, both come back from the file.</summary>
    /// <param name="checkpoint">Orderly stop (<see cref="HomeAgentEngine.Checkpoint"/>) first.</param>
    /// <param name="whileStopped">Runs with the store closed (copy or replace the files).</param>
    public void RestartHomeAgent(bool checkpoint = false, Action? whileStopped = null)
    {
        if (checkpoint)
        {
            HomeAgent.Checkpoint();
        }
        Driver.Clear();
        HomeAgent.Dispose();
        ((IDisposable)Store).Dispose();
        whileStopped?.Invoke();
        Store = _openStore();
        HomeAgent = NewHomeAgent();
    }

    /// <summary>Advances the clock to the next deadline of either engine and ticks both, until <paramref name="duration"/> passed.</summary>
    public void Run(TimeSpan duration) => Driver.Run(duration);

    public byte[] LastTo(Ipv6Address destination) => Driver.Sent.Last(d => EngineDriver.DestinationOf(d) == destination);

    public ReceiveResult DeliverToHomeAgent(byte[] datagram) => HomeAgent.Receive(datagram, new byte[70_000]);

    public byte[] SealFromNode()
    {
        var inner = new byte[Ipv6Header.Length + 8];
        new Ipv6Header(0, 0, 8, IpProtocol.NoNextHeader, 64, Provisioning.HomeAddress, Ipv6Address.Parse("2001:db8:ff::1")).WriteTo(inner);
        var buffer = new byte[2048];
        Assert.Equal(SealResult.Ok, MobileNode.SealData(inner, buffer, out int written));
        return buffer[..written];
    }

    public void Dispose()
    {
        HomeAgent.Dispose();
        MobileNode.Dispose();
        ((IDisposable)Store).Dispose();
    }
}
