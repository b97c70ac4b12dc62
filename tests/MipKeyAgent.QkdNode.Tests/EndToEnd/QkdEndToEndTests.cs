using MipKeyAgent.Protocol;
using MipKeyAgent.Protocol.HomeAgent;
using MipKeyAgent.TestSupport;
using MipKeyAgent.Esp;
using MipKeyAgent.Wire;

namespace MipKeyAgent.QkdNode.Tests.EndToEnd;

/// <summary>
/// The home agent and mobile node engines with keys from two paired in-process QKD nodes over
/// HTTPS: transport (wrapped) and reference mode, several rekeys with data
/// flowing; key exhaustion and a node outage during a rekey storm.
/// </summary>
public sealed class QkdEndToEndTests
{
    private static readonly TimeSpan Rekey = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData(KeyDelivery.Wrapped)]
    [InlineData(KeyDelivery.Reference)]
    public async Task PairedNodes_SeveralRekeys_KeysAgreeAndDataFlows(KeyDelivery delivery)
    {
        await using var pair = await QkdPair.StartAsync(prefill: 120);
        using var bed = new QkdEngineBed(pair, nodes: 4, delivery, Rekey);
        await bed.WaitForBufferedKeysAsync(4);
        bed.Start();
        await bed.RunAsync(TimeSpan.FromSeconds(5));
        bed.AssertEveryNodeKeyed();
        bed.AssertDataFlowsEverywhere();

        for (int round = 0; round < 4; round++)
        {
            await bed.RunAsync(Rekey);
            bed.AssertDataFlowsEverywhere();
        }
        await bed.RunAsync(TimeSpan.FromSeconds(5));
        bed.AssertEveryNodeKeyed(atLeast: 4);
        bed.AssertDataFlowsEverywhere();
        Assert.Equal(0, bed.HomeAgent.Counters.KeySourceUnavailable);
        Assert.All(bed.MobileNodes, n => Assert.Equal(0, n.Engine.Counters.DroppedTotal));
        Assert.Equal(0, bed.HomeAgent.Counters.DroppedTotal);
        if (delivery == KeyDelivery.Reference)
        {
            Assert.All(bed.MobileNodes, n => Assert.NotNull(n.Engine.KeyRing.Newest.Reference));
            Assert.True(bed.Fetched.Count >= 16, $"{bed.Fetched.Count} keys fetched");
            AssertNoKeyBytesOnTheLink(bed);
        }
        else
        {
            Assert.All(bed.MobileNodes, n => Assert.Null(n.Engine.KeyRing.Newest.Reference));
        }
    }

    /// <summary>
    /// Reference mode: neither a fetched secret nor its AES-KWP form appears in any captured datagram,
    /// nor in the plaintext Mobility Header of any BU/BA (opened with every key of the run), and
    /// every KEY-DIST in them carried a reference.
    /// </summary>
    private static void AssertNoKeyBytesOnTheLink(QkdEngineBed bed)
    {
        var known = new List<KnownGeneration>(bed.Fetched);
        foreach (var node in bed.MobileNodes)
        {
            var p = node.Provisioning;
            known.Add(new KnownGeneration(p.InitializationKey.ToArray(), p.SpiMnToHa, p.SpiHaToMn));
        }
        var plaintexts = ControlPlaintext.Open(bed.Driver.Sent, known);
        var distributions = ControlPlaintext.KeyDistributions(plaintexts);
        Assert.True(distributions.Count >= bed.Fetched.Count, $"{distributions.Count} KEY-DISTs opened for {bed.Fetched.Count} keys");
        Assert.All(distributions, d => Assert.True(d.IsReference));
        var kek = new byte[32];
        var wrapped = new byte[40];
        foreach (var node in bed.MobileNodes)
        {
            KeyDerivation.DeriveKek(node.Provisioning.InitializationKey, node.HomeAddress, kek);
            foreach (var generation in bed.Fetched)
            {
                KeyWrap.Wrap(kek, generation.Secret, wrapped);
                Assert.DoesNotContain(bed.Driver.Sent, d => ControlPlaintext.Contains(d, generation.Secret) || ControlPlaintext.Contains(d, wrapped));
                Assert.DoesNotContain(plaintexts, m => ControlPlaintext.Contains(m, generation.Secret) || ControlPlaintext.Contains(m, wrapped));
            }
        }
    }

    [Theory]
    [InlineData(KeyDelivery.Wrapped)]
    [InlineData(KeyDelivery.Reference)]
    public async Task RekeyStorm_PoolExhaustedThenNodeOutage_NoBindingLosesKeysAndRecovers(KeyDelivery delivery)
    {
        const int nodeCount = 24;
        // Enough for the inits and a few rekeys; the master generates nothing more (no session).
        await using var pair = await QkdPair.StartAsync(prefill: nodeCount + 8);
        using var bed = new QkdEngineBed(pair, nodeCount, delivery, TimeSpan.FromHours(1));
        await bed.WaitForBufferedKeysAsync(4);
        bed.Start();
        // 24 inits at once outrun the HA's prefetch (4 keys held): some answer KEY-STATUS 1 first.
        for (int i = 0; i < 20 && bed.MobileNodes.Any(n => n.Engine.View.AwaitingInit); i++)
        {
            await bed.RunAsync(TimeSpan.FromSeconds(5));
        }
        bed.AssertEveryNodeKeyed();
        var before = bed.MobileNodes.ToDictionary(n => n.HomeAddress, n => n.Engine.View.Newest);

        // Storm 1: every node asks at once; the pool runs dry.
        foreach (var node in bed.MobileNodes)
        {
            node.Engine.RequestUpdate();
        }
        await bed.RunAsync(TimeSpan.FromSeconds(20));
        Assert.True(bed.HomeAgent.Counters.KeySourceUnavailable > 0, "no KEY-STATUS 1 while the pool was empty");
        Assert.True(bed.MobileNodes.Sum(n => n.Engine.Counters.KeySourceUnavailable) > 0);
        Assert.Contains(bed.MobileNodes, n => n.Engine.View.Newest == before[n.HomeAddress]);
        bed.AssertEveryNodeKeyed();
        bed.AssertDataFlowsEverywhere();

        // Storm 2 with the master KME down.
        await pair.StopMasterAsync();
        long unavailable = bed.HomeAgent.Counters.KeySourceUnavailable;
        await bed.RunAsync(TimeSpan.FromSeconds(20));
        Assert.True(bed.HomeAgent.Counters.KeySourceUnavailable > unavailable, "no KEY-STATUS 1 during the outage");
        bed.AssertEveryNodeKeyed();
        bed.AssertDataFlowsEverywhere();
        var duringOutage = bed.MobileNodes.ToDictionary(n => n.HomeAddress, n => n.Engine.View.Newest);

        // Keys return: the master is back with a full pool; every waiting node gets its rekey.
        await pair.StartMasterAsync(prefill: 3 * nodeCount);
        await bed.WaitForBufferedKeysAsync(8);
        await bed.RunAsync(TimeSpan.FromSeconds(40));
        foreach (var node in bed.MobileNodes)
        {
            Assert.True(node.Engine.View.Newest > before[node.HomeAddress], $"{node.HomeAddress} never rekeyed after recovery");
        }
        Assert.Contains(bed.MobileNodes, n => n.Engine.View.Newest > duringOutage[n.HomeAddress]);
        bed.AssertEveryNodeKeyed(atLeast: 2);
        bed.AssertDataFlowsEverywhere();
        Assert.Equal(0, bed.HomeAgent.Counters.Dropped(DropReason.UnknownSpi));
        Assert.All(bed.MobileNodes, n => Assert.Equal(0, n.Engine.Counters.Dropped(DropReason.UnknownSpi)));
    }

    [Fact]
    public async Task EmptyPool_Init_KeyStatusOneNodeKeepsIkThenInitializesWhenKeysArrive()
    {
        await using var pair = await QkdPair.StartAsync(prefill: 0);
        using var bed = new QkdEngineBed(pair, nodes: 1, KeyDelivery.Wrapped, Rekey);
        bed.Start();
        await bed.RunAsync(TimeSpan.FromSeconds(5));
        var node = bed.MobileNodes[0];
        Assert.True(node.Engine.View.AwaitingInit);
        Assert.True(node.Engine.Counters.KeySourceUnavailable >= 1);
        Assert.Contains(bed.Events, e => e.Kind == ProtocolEventKind.KeyStatus);

        // Keys return (a session at the master makes the pair generate).
        using var sessions = MipKeyAgent.KeySupply.Sessions.QkdSessionClient.Create(new MipKeyAgent.KeySupply.Etsi014.Etsi014ClientOptions
        {
            KmeBaseUri = pair.MasterUri, ClientCertificatePemPath = LabPki.Main.SaeCert("SAE_HA"), ClientKeyPemPath = LabPki.Main.SaeKey("SAE_HA"),
            CaBundlePemPath = LabPki.Main.Ca,
        });
        Assert.True((await sessions.OpenAsync("SAE_MN1", 200)).IsOk);
        await bed.WaitForBufferedKeysAsync(1);
        await bed.RunAsync(TimeSpan.FromSeconds(10));
        bed.AssertEveryNodeKeyed();
        bed.AssertDataFlowsEverywhere();
    }
}
