using MipKeyAgent.Tools.Lab;

namespace MipKeyAgent.Cli.Tests.Lab;

/// <summary>
/// The one lab topology definition, read as its command plan (no root needed): the namespaces,
/// links, addresses and routes that lab/topology.sh, lab/tunnel-demo.sh, the scenario scripts and
/// the lab tests rely on by name.
/// </summary>
public sealed class NamespaceTopologyTests
{
    private static List<string> Plan(NamespaceTopology topology) => [.. topology.BuildCommands().Select(c => string.Join(' ', c))];

    [Fact]
    public void Default_OneNode_NamespacesAndLinksTheScriptsUse()
    {
        var topology = new NamespaceTopology();
        var plan = Plan(topology);

        Assert.Equal(["mk-home", "mk-rtr", "mk-fl1"], topology.Namespaces);
        Assert.Contains("ip netns exec mk-rtr sysctl -q -w net.ipv6.conf.all.forwarding=1", plan);
        Assert.Contains("ip -n mk-rtr link add mk-r0 type veth peer name mk-h0 netns mk-home", plan);
        Assert.Contains("ip -n mk-rtr addr add 2001:db8:1::ff/64 dev mk-r0 nodad", plan);
        Assert.Contains("ip -n mk-home addr add 2001:db8:1::1/64 dev mk-h0 nodad", plan);
        Assert.Contains("ip -n mk-home route add default via 2001:db8:1::ff", plan);
        Assert.Contains("ip -n mk-rtr link add mk-r1 type veth peer name mk-f1 netns mk-fl1", plan);
        Assert.Contains("ip -n mk-rtr addr add 2001:db8:100::ff/64 dev mk-r1 nodad", plan);
        Assert.Contains("ip -n mk-fl1 addr add 2001:db8:100::1/64 dev mk-f1 nodad", plan);
        Assert.Contains("ip -n mk-fl1 route add default via 2001:db8:100::ff", plan);
        Assert.DoesNotContain(plan, c => c.Contains("bridge", StringComparison.Ordinal));
    }

    [Fact]
    public void Nodes_Three_OneForeignLinkEachNumberedFromHundred()
    {
        var topology = new NamespaceTopology("t1-", nodes: 3);
        var plan = Plan(topology);

        Assert.Equal(["t1-home", "t1-rtr", "t1-fl1", "t1-fl2", "t1-fl3"], topology.Namespaces);
        Assert.Contains("ip -n t1-rtr link add t1-r3 type veth peer name t1-f3 netns t1-fl3", plan);
        Assert.Contains("ip -n t1-fl3 addr add 2001:db8:102::1/64 dev t1-f3 nodad", plan);
        Assert.Contains("ip -n t1-fl2 route add default via 2001:db8:101::ff", plan);
        Assert.Equal("2001:db8:2::3", NamespaceTopology.HomeAddress(3));
    }

    [Fact]
    public void Correspondent_HomeLinkBridgedWithRouterAddressOnBridge()
    {
        var topology = new NamespaceTopology("td-", nodes: 1, correspondent: true);
        var plan = Plan(topology);

        Assert.Equal(["td-home", "td-rtr", "td-cn", "td-fl1"], topology.Namespaces);
        Assert.Contains("ip -n td-rtr link add td-br type bridge mcast_snooping 0", plan);
        Assert.Contains("ip -n td-rtr link set td-r0 master td-br", plan);
        Assert.Contains("ip -n td-rtr link set td-rc master td-br", plan);
        Assert.Contains("ip -n td-rtr addr add 2001:db8:1::ff/64 dev td-br nodad", plan);
        Assert.DoesNotContain("ip -n td-rtr addr add 2001:db8:1::ff/64 dev td-r0 nodad", plan);
        Assert.Contains("ip -n td-cn addr add 2001:db8:1::10/64 dev td-c0 nodad", plan);
        Assert.Contains("ip -n td-cn route add default via 2001:db8:1::ff", plan);
        Assert.Contains("ip -n td-home addr add 2001:db8:1::1/64 dev td-h0 nodad", plan);

        // Every link is configured after it exists, and no interface name is longer than the kernel's 15 characters.
        var created = new HashSet<string>(StringComparer.Ordinal) { "lo" };
        foreach (var command in topology.BuildCommands())
        {
            if (command is [_, "-n", _, "link", "add", var link, ..])
            {
                created.Add(link);
                if (Array.IndexOf(command, "peer") is > 0 and var peer)
                {
                    created.Add(command[peer + 2]);
                }
            }
            else if (Array.IndexOf(command, "dev") is > 0 and var dev)
            {
                Assert.Contains(command[dev + 1], created);
            }
        }

        Assert.All(created, name => Assert.True(name.Length <= 15, name));
    }

    [Fact]
    public void Owns_NamespacesOfItsPrefixOnly()
    {
        var topology = new NamespaceTopology("mk-", nodes: 1);

        Assert.True(topology.Owns("mk-home"));
        Assert.True(topology.Owns("mk-fl7"));
        Assert.True(topology.Owns("mk-cn"));
        Assert.False(topology.Owns("mk-homes"));
        Assert.False(topology.Owns("mkx-home"));
        Assert.False(topology.Owns("td-rtr"));
    }

    [Theory]
    [InlineData("", 1)]
    [InlineData("Mk-", 1)]
    [InlineData("a-prefix-too-long", 1)]
    [InlineData("mk;rm", 1)]
    [InlineData("mk-", -1)]
    [InlineData("mk-", 10)]
    public void Constructor_BadPrefixOrNodeCount_Throws(string prefix, int nodes) =>
        Assert.ThrowsAny<ArgumentException>(() => new NamespaceTopology(prefix, nodes));

    [Fact]
    public void UpThenDown_RunsThePlanAndRemovesOnlyItsNamespaces()
    {
        var topology = new NamespaceTopology("t2-", nodes: 1);
        var existing = new List<string> { "other", "t2-fl5" };
        var ran = new List<string>();
        string Run(IReadOnlyList<string> command)
        {
            var line = string.Join(' ', command);
            ran.Add(line);
            switch (command)
            {
                case ["ip", "netns", "list"]:
                    return string.Join('\n', existing.Select(ns => ns + " (id: 1)"));
                case ["ip", "netns", "add", var ns]:
                    existing.Add(ns);
                    break;
                case ["ip", "netns", "del", var ns]:
                    existing.Remove(ns);
                    break;
            }

            return "";
        }

        topology.Up(Run);

        // A leftover of a larger build under the same prefix goes first; every planned command ran.
        Assert.Equal("ip netns del t2-fl5", ran[1]);
        Assert.Equal(["other", "t2-home", "t2-rtr", "t2-fl1"], existing);
        Assert.All(Plan(topology), c => Assert.Contains(c, ran));

        topology.Down(Run);
        Assert.Equal(["other"], existing);
        Assert.Equal("lab topology (prefix t2-): down\n", topology.Status(Run));
    }

    [Fact]
    public void Up_CommandFails_RemovesWhatItBuiltAndThrows()
    {
        var topology = new NamespaceTopology("t3-", nodes: 1);
        var existing = new List<string>();
        string Run(IReadOnlyList<string> command)
        {
            switch (command)
            {
                case ["ip", "netns", "list"]:
                    return string.Join('\n', existing);
                case ["ip", "netns", "add", var ns]:
                    existing.Add(ns);
                    break;
                case ["ip", "netns", "del", var ns]:
                    existing.Remove(ns);
                    break;
                case [_, "-n", "t3-fl1", "addr", ..]:
                    throw new InvalidOperationException("RTNETLINK answers: File exists");
            }

            return "";
        }

        var error = Assert.Throws<InvalidOperationException>(() => topology.Up(Run));

        Assert.Contains("File exists", error.Message, StringComparison.Ordinal);
        Assert.Empty(existing);
    }
}
