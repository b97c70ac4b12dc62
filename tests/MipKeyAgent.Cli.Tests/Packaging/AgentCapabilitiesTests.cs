using MipKeyAgent.Cli.Commands;
using MipKeyAgent.Cli.Config;

namespace MipKeyAgent.Cli.Tests.Packaging;

/// <summary>
/// The start check of <c>ha</c> and <c>mn</c> against the effective capability set (the real processes
/// without capabilities are Lab.Tests' UnprivilegedAgentLabTests): what each option needs, one message naming
/// every missing capability and how to grant it.
/// </summary>
public sealed class AgentCapabilitiesTests
{
    private const ulong NetRaw = 1UL << AgentCapabilities.NetRaw;
    private const ulong NetAdmin = 1UL << AgentCapabilities.NetAdmin;

    [Fact]
    public void BothHeld_AnyTransport_Passes()
    {
        AgentCapabilities.Require([("--transport raw", AgentCapabilities.NetRaw), ("--tun", AgentCapabilities.NetAdmin)], NetRaw | NetAdmin, "/usr/local/bin/mipkey");
        AgentCapabilities.Require([], 0, "/usr/local/bin/mipkey");
    }

    [Fact]
    public void NetRawMissing_RawTransport_NamesOptionCapabilityAndSetcap()
    {
        var e = Assert.Throws<ConfigException>(() =>
            AgentCapabilities.Require([("--transport raw", AgentCapabilities.NetRaw)], NetAdmin, "/usr/local/bin/mipkey"));
        Assert.Equal("missing capability", e.File);
        Assert.StartsWith("--transport raw needs CAP_NET_RAW, which this process does not hold; grant CAP_NET_RAW with " +
            "'sudo setcap cap_net_raw,cap_net_admin=ep /usr/local/bin/mipkey', or AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN", e.Problem, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void NeitherHeld_RawTransportAndTun_NamesBoth()
    {
        var e = Assert.Throws<ConfigException>(() =>
            AgentCapabilities.Require([("--transport raw", AgentCapabilities.NetRaw), ("--tun", AgentCapabilities.NetAdmin)], 0, "/opt/mipkey/bin/mipkey"));
        Assert.StartsWith("--transport raw needs CAP_NET_RAW, --tun needs CAP_NET_ADMIN, which this process does not hold; grant CAP_NET_ADMIN and CAP_NET_RAW",
            e.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void NetAdminHeldOnly_TapTransport_Passes() =>
        AgentCapabilities.Require([("--transport tap", AgentCapabilities.NetAdmin)], NetAdmin, "/usr/local/bin/mipkey");

    [Fact]
    public void RunByDotnetHost_Missing_NeverAdvisesSetcapOnDotnet()
    {
        var e = Assert.Throws<ConfigException>(() =>
            AgentCapabilities.Require([("--transport tap", AgentCapabilities.NetAdmin)], NetRaw, "/usr/share/dotnet/dotnet"));
        Assert.DoesNotContain("/usr/share/dotnet/dotnet", e.Problem, StringComparison.Ordinal);
        Assert.Contains("on the installed mipkey (scripts/install.sh", e.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Effective_ThisProcess_MatchesProcStatus()
    {
        var line = File.ReadLines("/proc/self/status").Single(l => l.StartsWith("CapEff:", StringComparison.Ordinal));
        Assert.Equal(Convert.ToUInt64(line["CapEff:".Length..].Trim(), 16), AgentCapabilities.Effective());
    }
}
