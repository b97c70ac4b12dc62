using MipKeyAgent.Simulation;
using MipKeyAgent.Store.Postgres;

namespace MipKeyAgent.Store.Tests;

/// <summary>
/// Load sharing on a real PostgreSQL (docs/cluster.md): three HAs active at once, the nodes split into six partitions by a stable hash
/// of the home address, each HA holding two partition leases and answering only their nodes. All three receive every datagram to the
/// one HA address (a shared home link). One HA dies; a survivor takes its partitions (their leases expired) and answers its nodes
/// under the keys they hold: no re-initialization, no generation rolled back; the dead HA's writes for them are refused.
/// </summary>
[Collection(PostgresClusterFixture.Name)]
public sealed class PostgresLoadSharingTests : IDisposable
{
    private const int Partitions = 6;
    private const int NodeCount = 18;
    private static readonly Ipv6Address HomeAgentAddress = Ipv6Address.Parse("2001:db8:1::1");
    private readonly PostgresCluster _cluster;
    private readonly StoreDirectory _directory = new();
    private readonly string _url;
    private readonly string _database;
    private readonly EngineDriver _driver = new(TestTime.NewClock());
    private readonly List<HomeAgent> _homeAgents = [];
    private readonly byte[] _inner = new byte[70_000];

    public PostgresLoadSharingTests(PostgresCluster cluster)
    {
        _cluster = cluster;
        _database = cluster.CreateDatabase();
        _url = cluster.Url(_database);
    }

    private sealed class HomeAgent(PostgresBindingStore store, HomeAgentEngine engine) : IDisposable
    {
        public PostgresBindingStore Store { get; } = store;

        public HomeAgentEngine Engine { get; } = engine;

        public bool Alive { get; set; } = true;

        public void Dispose()
        {
            Engine.Dispose();
            Store.Dispose();
        }
    }

    private HomeAgent StartHomeAgent(int index)
    {
        var store = PostgresBindingStore.OpenPartitioned(PostgresUrl.Parse(_url), MasterKey.Load(_directory.MasterKeyPath),
            new PartitionOptions($"ha-{index}", TimeSpan.FromMinutes(10), Partitions), ownsMasterKey: true);
        var engine = new HomeAgentEngine(new HomeAgentOptions { Address = HomeAgentAddress }, _driver.Clock,
            new SeededKeySource(10 + index), new SeededSpiSource(100 + index), _driver, store);
        var ha = new HomeAgent(store, engine);
        _homeAgents.Add(ha);
        _driver.AddTimer(() => ha.Alive ? ha.Engine.NextDeadline : null, () => ha.Engine.Tick());
        return ha;
    }

    /// <summary>Takes <paramref name="partition"/> for <paramref name="ha"/> and provisions its nodes there; false while another HA holds it.</summary>
    private static bool Take(HomeAgent ha, int partition, IReadOnlyList<MobileNodeProvisioning> nodes)
    {
        if (ha.Store.TryTakePartition(partition, nodes.Select(n => n.HomeAddress)) is not { } taken)
        {
            return false;
        }
        foreach (var node in nodes.Where(n => taken.Contains(n.HomeAddress)))
        {
            ha.Engine.Provision(node);
        }
        return true;
    }

    [Fact]
    public void ThreeActiveHomeAgents_OneKilled_SurvivorTakesItsPartitionsAndAnswersItsNodesUnderTheirKeys()
    {
        var random = new Random(7);
        var nodes = new List<MobileNodeProvisioning>();
        var mobileNodes = new List<MobileNodeEngine>();
        for (int i = 0; i < NodeCount; i++)
        {
            var ik = new byte[32];
            random.NextBytes(ik);
            var provisioning = new MobileNodeProvisioning(Ipv6Address.Parse($"2001:db8:2::{i + 1:x}"), ik, new Spi((uint)(1000 + (2 * i))),
                new Spi((uint)(1001 + (2 * i))));
            var careOf = Ipv6Address.Parse($"2001:db8:100::{i + 1:x}");
            var mn = new MobileNodeEngine(new MobileNodeOptions { Provisioning = provisioning, HomeAgentAddress = HomeAgentAddress, CareOfAddress = careOf,
                    RekeyInterval = TimeSpan.FromSeconds(3) },
                _driver.Clock, _driver, new InMemoryMobileNodeStateStore(), new SeededKeySource(200 + i));
            nodes.Add(provisioning);
            mobileNodes.Add(mn);
            _driver.Attach(careOf, LinkDirection.ToMobileNode, (byte[] d) => mn.Receive(d, _inner));
            _driver.AddTimer(() => mn.NextDeadline, mn.Tick);
        }
        var has = new[] { StartHomeAgent(0), StartHomeAgent(1), StartHomeAgent(2) };
        for (int partition = 0; partition < Partitions; partition++)
        {
            Assert.True(Take(has[partition / 2], partition, nodes));
        }
        // The shared home link: every HA receives every datagram to the HA address and answers only the nodes it serves.
        _driver.Attach(HomeAgentAddress, LinkDirection.ToHomeAgent, (byte[] d) =>
        {
            foreach (var ha in _homeAgents.Where(h => h.Alive))
            {
                ha.Engine.Receive(d, _inner);
            }
        });
        int PartitionOf(MobileNodeProvisioning n) => PostgresPartitions.Of(n.HomeAddress, Partitions);
        var ofDead = nodes.Where(n => PartitionOf(n) / 2 == 1).ToList();
        Assert.All(has, ha => Assert.Contains(nodes, n => ha.Engine.GetNode(n.HomeAddress) is not null));

        foreach (var mn in mobileNodes)
        {
            mn.Start();
        }
        _driver.Pump();
        _driver.Run(TimeSpan.FromSeconds(20));
        Assert.All(mobileNodes, mn => Assert.True(mn.View.Newest >= new Generation(2), $"a node did not rekey: {mn.View.Newest}"));
        var before = nodes.Zip(mobileNodes).ToDictionary(p => p.First.HomeAddress, p => p.Second.View.Newest);
        long survivorInits = has[0].Engine.Counters.Inits;

        // ha-1 dies (its leases expire); ha-0 takes its partitions, and ha-2, finding them held, does not.
        has[1].Alive = false;
        _cluster.Psql(_database, "UPDATE ha_lease SET expires_at = now() - interval '1 second' WHERE holder = 'ha-1'");
        Assert.True(Take(has[0], 2, nodes));
        Assert.True(Take(has[0], 3, nodes));
        Assert.False(Take(has[2], 2, nodes));
        _driver.Run(TimeSpan.FromSeconds(30));

        Assert.Equal([0, 1, 2, 3], has[0].Store.Partitions);
        Assert.All(mobileNodes, mn => Assert.Equal(0, mn.Counters.ReInits));
        Assert.All(mobileNodes, mn => Assert.Equal(1, mn.Counters.Inits));
        // The moved nodes were not initialized again at the survivor: it went on from the generations they held.
        Assert.Equal(survivorInits, has[0].Engine.Counters.Inits);
        Assert.NotEmpty(ofDead);
        foreach (var node in ofDead)
        {
            var mn = mobileNodes[nodes.IndexOf(node)];
            Assert.True(mn.View.Newest > before[node.HomeAddress], $"{node.HomeAddress} was not rekeyed by the survivor ({mn.View.Newest})");
            Assert.Equal(mn.View.Newest, has[0].Engine.GetNode(node.HomeAddress)!.Newest);
        }
        // The dead HA's writes for its former nodes are refused (fenced per partition), as is a survivor's write outside its partitions.
        var stale = Assert.Throws<BindingStoreException>(() => has[1].Store.SaveInitializationSequenceReserved(ofDead[0].HomeAddress, 1 << 20));
        Assert.Contains("now held by ha-0", stale.Message, StringComparison.Ordinal);
        var other = nodes.First(n => PartitionOf(n) >= 4);
        var outside = Assert.Throws<BindingStoreException>(() => has[0].Store.SaveInitializationSequenceReserved(other.HomeAddress, 1 << 20));
        Assert.Contains("does not hold partition-", outside.Message, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        foreach (var ha in _homeAgents)
        {
            ha.Dispose();
        }
        _directory.Dispose();
    }
}
