namespace MipKeyAgent.Protocol.Tests.HomeAgent;

public sealed class NodeDeadlinesTests
{
    private static readonly DateTimeOffset Start = TestTime.Start;

    private static List<HomeAgentNode> Nodes(int count, SpiTable table)
    {
        var nodes = new List<HomeAgentNode>();
        for (int i = 0; i < count; i++)
        {
            var ik = new byte[32];
            var provisioning = new MobileNodeProvisioning(new Ipv6Address((UInt128)(i + 1)), ik, new Spi(1000 + 2 * (uint)i), new Spi(1001 + 2 * (uint)i));
            var keys = GenerationKeys.Create(Generation.Initialization, ik, provisioning.SpiMnToHa, provisioning.SpiHaToMn, EspSuite.AesGcm256, Start);
            nodes.Add(new HomeAgentNode(new KeyRing(KeyRingSide.HomeAgent, provisioning.HomeAddress, keys, table), new byte[32]));
        }
        return nodes;
    }

    private static DateTimeOffset? ModelEarliest(List<HomeAgentNode> nodes) =>
        nodes.Select(n => n.ComputeDeadline()).Where(d => d is not null).Min();

    [Fact]
    public void RandomUpdates_ManyNodes_EarliestMatchesAScanAndDueNodesComeOutInOrder()
    {
        var nodes = Nodes(200, new SpiTable());
        var deadlines = new NodeDeadlines();
        var random = new Random(11);

        for (int step = 0; step < 5000; step++)
        {
            var node = nodes[random.Next(nodes.Count)];
            switch (random.Next(4))
            {
                case 0:
                    node.CareOfAddress = new Ipv6Address(7);
                    node.BindingExpiresAt = Start + TimeSpan.FromSeconds(random.Next(1, 10_000));
                    break;
                case 1:
                    node.CareOfAddress = null;
                    break;
                case 2:
                    node.RekeyDueAt = random.Next(3) == 0 ? null : Start + TimeSpan.FromSeconds(random.Next(1, 10_000));
                    break;
                default:
                    node.RekeyPending = !node.RekeyPending;
                    break;
            }
            deadlines.Update(node);
            Assert.Equal(ModelEarliest(nodes), deadlines.Earliest);
        }

        // Drain in deadline order, as Tick does: each due node is consumed (no timer left) and removed.
        var now = Start + TimeSpan.FromSeconds(5000);
        var previous = DateTimeOffset.MinValue;
        int drained = 0;
        while (deadlines.TryPeekDue(now, out var due))
        {
            Assert.True(due.Deadline >= previous);
            Assert.True(due.Deadline <= now);
            previous = due.Deadline;
            due.CareOfAddress = null;
            due.RekeyDueAt = null;
            deadlines.Update(due);
            drained++;
        }
        Assert.Equal(nodes.Count(n => n.DeadlineSlot >= 0), deadlines.Count);
        Assert.All(nodes, n => Assert.True(n.ComputeDeadline() is not { } d || d > now));
        Assert.True(drained > 0);
    }

    [Fact]
    public void Deregistration_TwoBoundNodes_NextDeadlineMovesToTheOtherBinding()
    {
        using var bed = new Testbed(new TestbedSettings { Nodes = 2 });
        bed.Nodes[0].Engine.Start();
        bed.Driver.Pump();
        bed.Clock.Advance(TimeSpan.FromSeconds(10));
        bed.Nodes[1].Engine.Start();
        bed.Driver.Pump();
        var first = bed.HomeAgent.GetNode(bed.Nodes[0].HomeAddress)!;
        var second = bed.HomeAgent.GetNode(bed.Nodes[1].HomeAddress)!;
        Assert.Equal(first.BindingExpiresAt, bed.HomeAgent.NextDeadline);

        bed.Nodes[0].Engine.Deregister();
        bed.Driver.Pump();

        Assert.Equal(second.BindingExpiresAt, bed.HomeAgent.NextDeadline);
    }
}
