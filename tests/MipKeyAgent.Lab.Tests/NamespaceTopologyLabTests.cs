using MipKeyAgent.Tools.Lab;

namespace MipKeyAgent.Lab.Tests;

/// <summary>
/// The one topology definition built for real through <c>mipkey lab up|status|down</c>, the command
/// lab/topology.sh runs: the namespaces, addresses and routes the scripts and the other lab tests
/// rely on exist, packets cross the router both ways, and <c>down</c> leaves nothing of the prefix.
/// </summary>
public sealed class NamespaceTopologyLabTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private readonly LabScratch _lab = new("nt");
    private NamespaceTopology _topology = null!;

    public async Task InitializeAsync()
    {
        await _lab.InitializeAsync();
        _topology = new NamespaceTopology(_lab.Name("-"), nodes: 2, correspondent: true);
    }

    public async Task DisposeAsync()
    {
        await Task.Run(() => _topology.Down(Shell.Command));
        await _lab.DisposeAsync();
    }

    [Fact]
    public async Task MipkeyLabUp_TwoNodesAndCorrespondent_AddressesRoutesAndReachabilityThenDownRemovesAll()
    {
        var up = await Mipkey("up", "--prefix", _topology.Prefix, "--nodes", "2", "--correspondent");
        Assert.True(up.ExitCode == 0, up.Output);

        var namespaces = Shell.Run("ip", "netns", "list");
        Assert.All(_topology.Namespaces, ns => Assert.Contains(ns, namespaces, StringComparison.Ordinal));
        Assert.Contains($"{NamespaceTopology.HomeAgentAddress}/64", Shell.Run("ip", "-n", _topology.HomeNamespace, "-6", "addr", "show", "dev", _topology.HomeAgentLink));
        Assert.Contains($"{NamespaceTopology.RouterHomeAddress}/64", Shell.Run("ip", "-n", _topology.RouterNamespace, "-6", "addr", "show", "dev", _topology.Bridge));
        Assert.Contains($"{NamespaceTopology.CorrespondentAddress}/64", Shell.Run("ip", "-n", _topology.CorrespondentNamespace, "-6", "addr", "show", "dev", _topology.CorrespondentLink));
        Assert.Contains($"{NamespaceTopology.CareOfAddress(2)}/64", Shell.Run("ip", "-n", _topology.ForeignNamespace(2), "-6", "addr", "show", "dev", _topology.NodeLink(2)));
        Assert.Contains($"default via {NamespaceTopology.RouterForeignAddress(2)}", Shell.Run("ip", "-n", _topology.ForeignNamespace(2), "-6", "route", "show"));
        Assert.Contains("forwarding = 1", Shell.Run("ip", "netns", "exec", _topology.RouterNamespace, "sysctl", "net.ipv6.conf.all.forwarding"));

        // Through the router: a node's care-of link to the home agent, and the correspondent across the bridge.
        var ping = Path.Combine(AppContext.BaseDirectory, "lab", "ping6.py");
        var toHomeAgent = await LabScratch.ExecAsync(_topology.ForeignNamespace(2), Timeout, Shell.Python, ping, NamespaceTopology.HomeAgentAddress);
        Assert.True(toHomeAgent.ExitCode == 0, toHomeAgent.Output);
        var toNode = await LabScratch.ExecAsync(_topology.CorrespondentNamespace, Timeout, Shell.Python, ping, NamespaceTopology.CareOfAddress(1));
        Assert.True(toNode.ExitCode == 0, toNode.Output);

        var status = await Mipkey("status", "--prefix", _topology.Prefix);
        Assert.Contains($"== {_topology.ForeignNamespace(1)}", status.Output, StringComparison.Ordinal);
        Assert.Contains(NamespaceTopology.CareOfAddress(1), status.Output, StringComparison.Ordinal);

        var down = await Mipkey("down", "--prefix", _topology.Prefix);
        Assert.True(down.ExitCode == 0, down.Output);
        namespaces = Shell.Run("ip", "netns", "list");
        Assert.All(_topology.Namespaces, ns => Assert.DoesNotContain(ns, namespaces, StringComparison.Ordinal));
        Assert.Contains("down", (await Mipkey("status", "--prefix", _topology.Prefix)).Output, StringComparison.Ordinal);
    }

    private static Task<(int ExitCode, string Output)> Mipkey(params string[] lab) =>
        Shell.RunAsync(AgentProcess.Dotnet, [AgentProcess.MipkeyDll, "lab", .. lab], Timeout, check: false);
}
