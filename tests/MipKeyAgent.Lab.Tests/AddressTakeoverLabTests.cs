using System.Globalization;
using System.Text.Json;
using MipKeyAgent.Store;
using MipKeyAgent.TestSupport;

namespace MipKeyAgent.Lab.Tests;

/// <summary>
/// A hot-standby pair on two machines (docs/cluster.md): two HA namespaces and a node's namespace on one bridge, the HA's
/// address configured on neither host, both HAs started with <c>--takeover-link</c> on a real PostgreSQL (a throwaway
/// cluster). The active is killed with SIGKILL; once the standby holds the lease, the node's neighbour cache must name the
/// new active's MAC at once (its unsolicited override advertisements, RFC 4861 section 7.2.6; without them the node's
/// kernel would keep the dead HA's MAC for at least its 5 s DELAY state), and the node's next exchanges are answered by the
/// new active under the keys it already holds: no initialization there, no re-initialization at the node.
/// </summary>
public sealed class AddressTakeoverLabTests : IAsyncLifetime
{
    private const string HomeAgentAddress = "2001:db8:1::1";
    private const string MacA = "02:00:5e:10:0a:01";
    private const string MacB = "02:00:5e:10:0b:01";
    private const string InitializationKey = "hex:7a0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    private readonly LabScratch _lab = new("to");

    public Task InitializeAsync() => _lab.InitializeAsync();

    public Task DisposeAsync() => _lab.DisposeAsync();

    [Fact]
    public async Task ActiveKilled_StandbyTakesAddressOver_NeighbourCacheMovesAndNextUpdateAnsweredUnderExistingKeys()
    {
        var (a, b, node) = Link();
        using var cluster = new PostgresCluster();
        string url = cluster.Url(cluster.CreateDatabase());
        string masterKey = _lab.File("pair.key");
        MasterKey.Create(masterKey);
        var haConf = _lab.PrivateFile("ha.conf", $"""
            [home-agent]
            address = {HomeAgentAddress}
            rekey-interval = 2s

            [mobile-node mn1]
            home-address = 2001:db8:2::1
            initialization-key = {InitializationKey}
            spi-mn-to-ha = 1000
            spi-ha-to-mn = 1001
            """);
        var mnConf = _lab.PrivateFile("mn1.conf", $"""
            [mobile-node]
            home-agent-address = {HomeAgentAddress}
            home-address = 2001:db8:2::1
            care-of-address = 2001:db8:1::100
            initialization-key = {InitializationKey}
            spi-mn-to-ha = 1000
            spi-ha-to-mn = 1001
            rekey-interval = 1s
            """);
        string[] Ha(string name, params string[] more) => [AgentProcess.Dotnet, AgentProcess.MipkeyDll, "ha", "-c", haConf, "-i", "eth0",
            "--store", url, "--master-key", masterKey, "--lease-holder", name, "--lease-seconds", "2", "--takeover-link", "eth0",
            "--status-socket", _lab.File(name + ".sock"), .. more];

        var haA = _lab.Track(AgentProcess.Start(a, Ha("ha-a")));
        await WaitForRole("ha-a", "active", haA);
        var haB = _lab.Track(AgentProcess.Start(b, Ha("ha-b", "--standby")));
        await WaitForRole("ha-b", "standby", haB);
        var mn = _lab.Track(AgentProcess.Start(node, AgentProcess.Dotnet, AgentProcess.MipkeyDll, "mn", "-c", mnConf, "-i", "eth0",
            "--store", _lab.File("mn1.db"), "--status-socket", _lab.File("mn1.sock")));
        await LabScratch.WaitAsync(async () => await Generation() >= 2, TimeSpan.FromSeconds(60),
            () => "the node did not rekey with ha-a: " + mn.Output + "\n" + haA.Output);
        Assert.Contains(MacA, await NeighbourEntry(node), StringComparison.Ordinal);

        await haA.KillAsync();
        await WaitForRole("ha-b", "active", haB);
        int before = await Generation();
        // The announcement, not the node's own unreachability detection (DELAY 5 s, then unicast probes): at once.
        await LabScratch.WaitAsync(async () => (await NeighbourEntry(node)).Contains(MacB, StringComparison.Ordinal), TimeSpan.FromSeconds(3),
            () => $"the node's neighbour entry for {HomeAgentAddress} did not move to ha-b's MAC {MacB}: {NeighbourEntry(node).Result}\n{haB.Output}");
        await LabScratch.WaitAsync(async () => await Generation() >= before + 2, TimeSpan.FromSeconds(60),
            () => "the node did not rekey with ha-b: " + mn.Output + "\n" + haB.Output);

        var nodeStatus = await AgentProcess.StatusAsync(_lab.File("mn1.sock"));
        Assert.Equal(1, Counter(nodeStatus, "inits"));
        Assert.Equal(0, Counter(nodeStatus, "reinits"));
        var newActive = await AgentProcess.StatusAsync(_lab.File("ha-b.sock"));
        Assert.Equal(0, Counter(newActive, "inits"));
        Assert.True(Counter(newActive, "updates") >= 1, newActive.ToString());
        Assert.Contains($"took over {HomeAgentAddress} on eth0", haB.Output, StringComparison.Ordinal);

        await mn.StopAsync(TimeSpan.FromSeconds(5));
        await haB.StopAsync(TimeSpan.FromSeconds(5));
    }

    /// <summary>A bridge in a switch namespace; the two HA hosts and the node each on a port, with their own addresses only.</summary>
    private (string A, string B, string Node) Link()
    {
        var sw = _lab.Namespace("sw");
        var bridge = _lab.Name("br");
        Shell.Run("ip", "-n", sw, "link", "add", bridge, "type", "bridge", "mcast_snooping", "0");
        Shell.Run("ip", "-n", sw, "link", "set", bridge, "up");
        var hosts = new List<string>();
        foreach (var (role, mac, address) in new[] { ("a", MacA, "2001:db8:1::a"), ("b", MacB, "2001:db8:1::b"), ("n", "02:00:5e:10:01:00", "2001:db8:1::100") })
        {
            var ns = _lab.Namespace(role);
            var port = _lab.Name("p" + role);
            Shell.Run("ip", "-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns);
            Shell.Run("ip", "-n", sw, "link", "set", port, "master", bridge, "up");
            Shell.Run("ip", "-n", ns, "link", "set", "eth0", "address", mac);
            Shell.Run("ip", "-n", ns, "addr", "add", address + "/64", "dev", "eth0", "nodad");
            Shell.Run("ip", "-n", ns, "link", "set", "eth0", "up");
            hosts.Add(ns);
        }
        _lab.WaitUntilSettled();
        return (hosts[0], hosts[1], hosts[2]);
    }

    private async Task WaitForRole(string name, string role, AgentProcess process) =>
        await LabScratch.WaitAsync(async () => !process.HasExited && await Role(name) == role, TimeSpan.FromSeconds(60),
            () => $"{name} did not become {role}: {process.Output}");

    private async Task<string?> Role(string name)
    {
        var (code, output) = await Shell.RunAsync(AgentProcess.Dotnet, [AgentProcess.MipkeyDll, "ha", "status", "--status-socket", _lab.File(name + ".sock"),
            "--json"], TimeSpan.FromSeconds(20), check: false);
        if (code != 0)
        {
            return null;
        }
        using var document = JsonDocument.Parse(output);
        return document.RootElement.TryGetProperty("cluster", out var cluster) && cluster.ValueKind == JsonValueKind.Object
            ? cluster.GetProperty("role").GetString() : null;
    }

    /// <summary>The node's newest generation number (0 while it holds only its IK).</summary>
    private async Task<int> Generation()
    {
        var status = await AgentProcess.StatusAsync(_lab.File("mn1.sock"));
        var bindings = status.GetProperty("bindings");
        if (bindings.GetArrayLength() == 0 || bindings[0].GetProperty("highestIssued").GetString() is not ['g', .. var number])
        {
            return 0;
        }
        return int.Parse(number, CultureInfo.InvariantCulture);
    }

    private static async Task<string> NeighbourEntry(string ns) =>
        (await Shell.RunAsync("ip", ["-n", ns, "-6", "neigh", "show", HomeAgentAddress, "dev", "eth0"], TimeSpan.FromSeconds(10))).Output.Trim();

    private static long Counter(JsonElement status, string name) =>
        status.GetProperty("counters").TryGetProperty(name, out var value) ? value.GetInt64() : 0;
}
