using Microsoft.Extensions.Time.Testing;
using MipKeyAgent.KeySupply;
using MipKeyAgent.Protocol;
using MipKeyAgent.Protocol.HomeAgent;
using MipKeyAgent.Protocol.Keys;
using MipKeyAgent.Protocol.MobileNode;
using MipKeyAgent.Simulation;
using MipKeyAgent.TestSupport;
using MipKeyAgent.Wire;

namespace MipKeyAgent.QkdNode.Tests.EndToEnd;

/// <summary>One mobile node of a <see cref="QkdEngineBed"/>.</summary>
internal sealed class QkdTestNode
{
    public required MobileNodeProvisioning Provisioning { get; init; }
    public required MobileNodeEngine Engine { get; init; }
    public required KeyReferenceFetcher? Fetcher { get; init; }
    public required Ipv6Address CareOf { get; init; }
    public int DataReceived { get; set; }
    public Ipv6Address HomeAddress => Provisioning.HomeAddress;
}

/// <summary>
/// A home agent and mobile nodes (engines run by an <see cref="EngineDriver"/>: a link without
/// delay or loss, a manual clock) whose keys come from a real in-process QKD node pair over HTTPS:
/// the HA draws with <see cref="QkdKeySource"/> at the master, each MN fetches referenced keys
/// with a <see cref="KeyReferenceFetcher"/> at the slave. Engine time is virtual; HTTP runs in
/// real time, and the host loop never advances engine time while a fetch is in flight, and paces
/// engine time (1 virtual second per few real milliseconds) so the HA's prefetch can refill.
/// </summary>
internal sealed class QkdEngineBed : IDisposable
{
    public static readonly Ipv6Address HomeAgentAddress = Ipv6Address.Parse("2001:db8:1::1");
    private static readonly TimeSpan RealPerVirtualSecond = TimeSpan.FromMilliseconds(4);
    private readonly byte[] _inner = new byte[70_000];
    private readonly Dictionary<Ipv6Address, QkdTestNode> _byHome = [];
    private int _dataCounter;

    public QkdEngineBed(QkdPair pair, int nodes, KeyDelivery delivery, TimeSpan rekeyInterval)
        : this(pair.MasterUri, pair.SlaveUri, nodes, delivery, rekeyInterval)
    {
    }

    /// <summary>The HA draws at <paramref name="haKme"/>, the MNs fetch at <paramref name="mnKme"/>.</summary>
    public QkdEngineBed(Uri haKme, Uri mnKme, int nodes, KeyDelivery delivery, TimeSpan rekeyInterval)
    {
        KeySource = QkdKeySource.Start(Nodes.Client(haKme, "SAE_HA", timeout: TimeSpan.FromSeconds(2)), "SAE_MN1", new KeyPrefetchOptions
        {
            MinDepth = 4, MaxDepth = 32, MaxPerRequest = 16, InitialBackoff = TimeSpan.FromMilliseconds(50), MaxBackoff = TimeSpan.FromMilliseconds(200),
        }, TimeProvider.System, masterSaeId: "SAE_HA");
        HomeAgent = new HomeAgentEngine(
            new HomeAgentOptions { Address = HomeAgentAddress, RekeyInterval = rekeyInterval, SendBindingRefreshRequest = true, KeyDelivery = delivery },
            Clock, KeySource, new SeededSpiSource(3), Driver, events: Events.Add);
        Driver.Attach(HomeAgentAddress, LinkDirection.ToHomeAgent, (byte[] d) =>
        {
            var r = HomeAgent.Receive(d, _inner);
            HomeAgentResults.Add(r);
        });
        for (int i = 0; i < nodes; i++)
        {
            var ik = new byte[32];
            new Random(100 + i).NextBytes(ik);
            var provisioning = new MobileNodeProvisioning(Ipv6Address.Parse($"2001:db8:2::{i + 1:x}"), ik, new Spi(1000 + 2 * (uint)i), new Spi(1001 + 2 * (uint)i));
            HomeAgent.Provision(provisioning);
            var fetcher = delivery == KeyDelivery.Reference
                ? new KeyReferenceFetcher(Nodes.Client(mnKme, "SAE_MN1", timeout: TimeSpan.FromSeconds(2)))
                : null;
            var careOf = Ipv6Address.Parse($"2001:db8:100::{i + 1:x}");
            var node = new QkdTestNode
            {
                Provisioning = provisioning,
                CareOf = careOf,
                Fetcher = fetcher,
                Engine = new MobileNodeEngine(new MobileNodeOptions { Provisioning = provisioning, HomeAgentAddress = HomeAgentAddress, CareOfAddress = careOf },
                    Clock, Driver, new InMemoryMobileNodeStateStore(), new SeededKeySource(200 + i), Events.Add, fetcher),
            };
            Driver.Attach(careOf, LinkDirection.ToMobileNode, (byte[] d) =>
            {
                if (node.Engine.Receive(d, _inner).Outcome == ReceiveOutcome.Data)
                {
                    node.DataReceived++;
                }
            });
            MobileNodes.Add(node);
            _byHome.Add(provisioning.HomeAddress, node);
        }
        Driver.AddTimer(() => HomeAgent.NextDeadline, HomeAgent.Tick);
        foreach (var node in MobileNodes)
        {
            Driver.AddTimer(() => node.Engine.NextDeadline, node.Engine.Tick);
        }
    }

    public EngineDriver Driver { get; } = new(TestTime.NewClock());
    public FakeTimeProvider Clock => Driver.Clock;
    public QkdKeySource KeySource { get; }
    public HomeAgentEngine HomeAgent { get; }
    public List<QkdTestNode> MobileNodes { get; } = [];
    public List<ProtocolEvent> Events { get; } = [];
    public List<ReceiveResult> HomeAgentResults { get; } = [];

    /// <summary>Every secret the MNs fetched, with the SPIs it keys (to open captured control packets).</summary>
    public List<KnownGeneration> Fetched { get; } = [];

    public DateTimeOffset Now => Clock.GetUtcNow();

    /// <summary>Waits (real time) until the HA's prefetch buffer holds <paramref name="count"/> keys.</summary>
    public async Task WaitForBufferedKeysAsync(int count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (KeySource.Buffer.Count < count)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the HA's key buffer holds {KeySource.Buffer.Count} keys, not {count}");
            await Task.Delay(10);
        }
    }

    public void Start()
    {
        foreach (var node in MobileNodes)
        {
            node.Engine.Start();
        }
    }

    /// <summary>Delivers datagrams and applies fetch completions until nothing is in flight (real time bounded).</summary>
    public async Task SettleAsync()
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            Driver.Pump();
            bool applied = false;
            foreach (var node in MobileNodes)
            {
                while (node.Fetcher?.Completions.TryDequeue(out var completion) == true)
                {
                    var secret = completion.Secret?.ToArray();
                    if (completion.ApplyTo(node.Engine) && secret is not null)
                    {
                        var g = node.Engine.KeyRing.Newest;
                        Fetched.Add(new KnownGeneration(secret, g.SpiMnToHa, g.SpiHaToMn));
                    }
                    applied = true;
                }
            }
            if (!applied && Driver.Pending == 0 && MobileNodes.All(n => (n.Fetcher?.Outstanding ?? 0) == 0))
            {
                return;
            }
            Assert.True(DateTime.UtcNow < deadline, "fetches did not settle");
            if (!applied)
            {
                await Task.Delay(1);
            }
        }
    }

    /// <summary>The host loop for <paramref name="duration"/> of engine time.</summary>
    public async Task RunAsync(TimeSpan duration)
    {
        var end = Now + duration;
        while (true)
        {
            await SettleAsync();
            var next = Driver.NextDeadline;
            if (next is null || next > end)
            {
                break;
            }
            if (next > Now)
            {
                var step = next.Value - Now;
                Driver.MoveTo(next.Value);
                await Task.Delay(RealPerVirtualSecond * Math.Min(step.TotalSeconds, 50));
            }
            Driver.TickAll();
        }
        Driver.MoveTo(end);
        await SettleAsync();
    }

    /// <summary>One tunnelled packet each way for every node; asserts both arrive decrypted.</summary>
    public void AssertDataFlowsEverywhere()
    {
        var buffer = new byte[2048];
        foreach (var node in MobileNodes)
        {
            var inner = InnerPacket(node);
            Assert.Equal(SealResult.Ok, HomeAgent.SealData(node.HomeAddress, inner, buffer, out int n));
            int before = node.DataReceived;
            Driver.Send(buffer.AsSpan(0, n));
            Driver.Pump();
            Assert.Equal(before + 1, node.DataReceived);
            Assert.Equal(SealResult.Ok, node.Engine.SealData(InnerPacket(node), buffer, out n));
            int haBefore = HomeAgentResults.Count(r => r.Outcome == ReceiveOutcome.Data);
            Driver.Send(buffer.AsSpan(0, n));
            Driver.Pump();
            Assert.Equal(haBefore + 1, HomeAgentResults.Count(r => r.Outcome == ReceiveOutcome.Data));
        }
    }

    /// <summary>Every node holds a dynamic generation and agrees with the HA on it.</summary>
    public void AssertEveryNodeKeyed(uint atLeast = 1)
    {
        foreach (var node in MobileNodes)
        {
            var view = node.Engine.View;
            Assert.True(view.Newest.Value >= atLeast, $"{node.HomeAddress} holds only {view.Newest}");
            Assert.False(view.AwaitingInit);
            var ha = HomeAgent.GetNode(node.HomeAddress)!;
            Assert.True(ha.Newest == view.Newest || ha.Previous == view.Newest, $"{node.HomeAddress}: MN {view.Newest}, HA {ha.Newest}/{ha.Previous}");
        }
    }

    private byte[] InnerPacket(QkdTestNode node)
    {
        var packet = new byte[Ipv6Header.Length + 16];
        new Ipv6Header(0, 0, 16, IpProtocol.NoNextHeader, 64, node.HomeAddress, Ipv6Address.Parse("2001:db8:ff::1")).WriteTo(packet);
        BitConverter.TryWriteBytes(packet.AsSpan(Ipv6Header.Length), ++_dataCounter);
        return packet;
    }

    public void Dispose()
    {
        HomeAgent.Dispose();
        foreach (var node in MobileNodes)
        {
            node.Engine.Dispose();
            node.Fetcher?.Dispose();
        }
        KeySource.Dispose();
    }
}
