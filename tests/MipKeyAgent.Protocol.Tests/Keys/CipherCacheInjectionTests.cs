namespace MipKeyAgent.Protocol.Tests.Keys;

/// <summary>
/// The home agent's SAs take their cipher slots in the cache its host passes
/// (<c>HomeAgentOptions.Ciphers</c>): a small one bounds them, and every exchange
/// and data packet still goes through with its cipher objects released and rebuilt.
/// </summary>
public sealed class CipherCacheInjectionTests
{
    [Fact]
    public void FortyNodes_InjectedCacheOfSixteen_EveryExchangeSucceedsWithinTheBound()
    {
        var ciphers = new CipherCache(16);
        using var bed = Testbed.Started(new TestbedSettings { Nodes = 40, Ciphers = ciphers });
        foreach (var node in bed.Nodes)
        {
            Assert.Equal(new Generation(1), node.View.Newest);
            bed.AssertDataFlows(node);
            Assert.InRange(ciphers.Count, 1, 16);
        }

        foreach (var node in bed.Nodes)
        {
            bed.AssertDataFlows(node);
        }
        Assert.InRange(ciphers.Count, 1, 16);
        Assert.Equal(0, bed.HomeAgent.Counters.DroppedTotal);
        Assert.Equal(0, bed.Nodes.Sum(n => n.Engine.Counters.DroppedTotal));
    }
}
