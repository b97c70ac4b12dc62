using MipKeyAgent.Protocol;
using MipKeyAgent.Protocol.HomeAgent;
using MipKeyAgent.QkdNode.Tests.EndToEnd;

namespace MipKeyAgent.QkdNode.Tests.Network;

/// <summary>
/// The design's network with the agents on it: the home agent's SAE behind KME_A, the mobile nodes'
/// behind KME_C, A and C joined only through KME_B. Every generation secret is a key relayed through
/// B; B's failure is an outage (nodes keep their keys, rekeys wait) and keys resume when B is back.
/// </summary>
public sealed class NetworkScenarioTests
{
    [Theory]
    [InlineData(KeyDelivery.Wrapped)]
    [InlineData(KeyDelivery.Reference)]
    public async Task HaBehindA_MnBehindC_RekeysDrawRelayedKeys_IntermediateOutageSurvived(KeyDelivery delivery)
    {
        const int nodeCount = 3;
        await using var chain = await QkdChain.StartAsync(prefill: 60);
        // The HA's key-use session toward its nodes' SAE keeps link keys coming on both links.
        using var sessions = SaeHttp.Sae(chain.UriA, "SAE_HA");
        Assert.Equal(201, (await sessions.SendAsync(HttpMethod.Post, "/api/v1/sessions", """{"peer_SAE_ID":"SAE_MN1","throughput":50}""")).Status);
        using var bed = new QkdEngineBed(chain.UriA, chain.UriC, nodeCount, delivery, TimeSpan.FromHours(1));
        await bed.WaitForBufferedKeysAsync(4);
        bed.Start();
        for (int i = 0; i < 20 && bed.MobileNodes.Any(n => n.Engine.View.AwaitingInit); i++)
        {
            await bed.RunAsync(TimeSpan.FromSeconds(5));
        }
        bed.AssertEveryNodeKeyed();
        foreach (var node in bed.MobileNodes)
        {
            node.Engine.RequestUpdate();
        }
        await bed.RunAsync(TimeSpan.FromSeconds(10));
        bed.AssertEveryNodeKeyed(atLeast: 2);
        bed.AssertDataFlowsEverywhere();
        // Every key the HA drew was relayed: generated at A, passed on by B, held at C.
        Assert.True(chain.B!.Node.RelayForwarded >= bed.KeySource.Buffer.Counters.Taken,
            $"B relayed {chain.B.Node.RelayForwarded} keys, the HA used {bed.KeySource.Buffer.Counters.Taken}");
        Assert.True(chain.C.Node.RelayTerminated >= bed.KeySource.Buffer.Counters.Taken); // (a prefetch may be in flight: no equality)

        // B fails: the HA's fetches fail (503 naming B), rekeys wait, nobody loses keys.
        await chain.StopBAsync();
        long unavailable = bed.HomeAgent.Counters.KeySourceUnavailable;
        long failures = bed.KeySource.Buffer.Counters.FetchFailures;
        for (int round = 0; round < 4; round++)
        {
            foreach (var node in bed.MobileNodes)
            {
                node.Engine.RequestUpdate();
            }
            await bed.RunAsync(TimeSpan.FromSeconds(10));
        }
        Assert.True(bed.KeySource.Buffer.Counters.FetchFailures > failures, "no failed fetch while B was down");
        Assert.True(bed.HomeAgent.Counters.KeySourceUnavailable > unavailable, "no KEY-STATUS 1 while B was down");
        bed.AssertEveryNodeKeyed(atLeast: 2);
        bed.AssertDataFlowsEverywhere();
        var duringOutage = bed.MobileNodes.ToDictionary(n => n.HomeAddress, n => n.Engine.View.Newest);

        // B is back (empty pools, no sessions): A drops its stale link keys toward B, announces its
        // session again, and relayed keys flow; every node's waiting rekey completes.
        await chain.StartBAsync();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (bed.KeySource.Buffer.Count < 4)
        {
            Assert.True(DateTime.UtcNow < deadline, $"keys never came back after B returned ({bed.KeySource.Buffer.LastError})");
            await Task.Delay(20);
        }
        await bed.RunAsync(TimeSpan.FromSeconds(30));
        foreach (var node in bed.MobileNodes)
        {
            node.Engine.RequestUpdate();
        }
        await bed.RunAsync(TimeSpan.FromSeconds(30));
        foreach (var node in bed.MobileNodes)
        {
            Assert.True(node.Engine.View.Newest > duringOutage[node.HomeAddress], $"{node.HomeAddress} never rekeyed after B returned");
        }
        bed.AssertDataFlowsEverywhere();
        Assert.True(chain.A.Node.LinkKeysDropped > 0);
        Assert.Equal(0, bed.HomeAgent.Counters.Dropped(DropReason.UnknownSpi));
        Assert.All(bed.MobileNodes, n => Assert.Equal(0, n.Engine.Counters.Dropped(DropReason.UnknownSpi)));
        Assert.All(bed.MobileNodes, n => Assert.Equal(1UL, n.Engine.View.InitEpoch)); // never re-initialized
    }
}
