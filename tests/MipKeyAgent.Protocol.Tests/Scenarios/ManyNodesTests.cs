namespace MipKeyAgent.Protocol.Tests.Scenarios;

/// <summary>Scenario: one home agent keying many mobile nodes at once (one-to-many, background FIG. 1).</summary>
public sealed class ManyNodesTests
{
    [Fact]
    public void FiftyNodes_StartAndRekeyByBothTimers_EveryNodeAgreesWithTheHomeAgent()
    {
        var settings = new TestbedSettings
        {
            Nodes = 50,
            NodeRekey = TimeSpan.FromSeconds(60),
            HomeAgentRekey = TimeSpan.FromSeconds(90),
            BindingRefreshRequest = true,
        };
        using var bed = Testbed.Started(settings);
        foreach (var node in bed.Nodes)
        {
            Assert.Equal(new Generation(1), node.View.Newest);
            bed.QueueData(node);
        }

        for (int step = 0; step < 10; step++)
        {
            bed.Run(TimeSpan.FromSeconds(30));
            foreach (var node in bed.Nodes)
            {
                bed.QueueData(node);
            }
        }
        bed.AssertAllQueuedDataDelivered();

        foreach (var node in bed.Nodes)
        {
            var ha = bed.HomeAgentView(node);
            Assert.True(node.View.Newest >= new Generation(4), $"{node.HomeAddress} at {node.View.Newest}");
            Assert.Equal(ha.Newest, node.View.Newest);
            Assert.Equal(ha.Transmit, node.View.Previous);
            bed.AssertDataFlows(node);
        }
        Assert.Equal(50 * 3 * 4, bed.HomeAgent.Spis.Count);
        Assert.Equal(0, bed.HomeAgent.Counters.DroppedTotal);
        Assert.Equal(0, bed.Nodes.Sum(n => n.Engine.Counters.DroppedTotal));
    }
}
