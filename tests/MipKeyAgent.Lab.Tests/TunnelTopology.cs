using System.Security.Cryptography;
using MipKeyAgent.Protocol;
using MipKeyAgent.Protocol.HomeAgent;
using MipKeyAgent.Protocol.Keys;
using MipKeyAgent.Protocol.MobileNode;
using MipKeyAgent.Transport;
using MipKeyAgent.Protocol.DataPlane;
using MipKeyAgent.Tools.Lab;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Lab.Tests;

/// <summary>
/// The lab topology with a correspondent and one foreign link (<see cref="NamespaceTopology"/>),
/// with our home agent and mobile node in-process:
/// <code>
///  ns "cn" correspondent 2001:db8:1::10 --veth--+
///                                               +-- bridge 2001:db8:1::ff [ns "rtr", forwarding] 2001:db8:100::ff --veth-- 2001:db8:100::1 ns "fl1"
///  ns "home" home agent  2001:db8:1::1  --veth--+         (home link 2001:db8:1::/64)                           (care-of)  tun: 2001:db8:1::100 (HoA)
/// </code>
/// The home agent (raw socket + <see cref="HomeLinkProxy"/> on its veth, beside a kernel that
/// does not forward) proxies the HoA on the home link and tunnels to the care-of address; the
/// mobile node's kernel owns the HoA on a tun, with a default route through it and a host route
/// to the home agent through the care-of link. Everything is deleted after the class.
/// </summary>
public sealed class TunnelTopology : IAsyncLifetime
{
    public static readonly Ipv6Address Correspondent = Ipv6Address.Parse(NamespaceTopology.CorrespondentAddress);
    public static readonly Ipv6Address RouterHome = Ipv6Address.Parse(NamespaceTopology.RouterHomeAddress);
    public static readonly Ipv6Address HomeAgentAddress = Ipv6Address.Parse(NamespaceTopology.HomeAgentAddress);
    public static readonly Ipv6Address HomeAddress = Ipv6Address.Parse(NamespaceTopology.OnLinkHomeAddress);
    public static readonly Ipv6Address RouterForeign = Ipv6Address.Parse(NamespaceTopology.RouterForeignAddress(1));
    public static readonly Ipv6Address CareOf = Ipv6Address.Parse(NamespaceTopology.CareOfAddress(1));

    private readonly LabScratch _lab = new("dp");
    private NamespaceTopology? _topology;
    private RawSocketTransport? _homeAgentRaw;
    private RawSocketTransport? _nodeRaw;
    private HomeLinkProxy? _proxy;

    public string CorrespondentNs => Topology.CorrespondentNamespace;

    public string RouterNs => Topology.RouterNamespace;

    public string HomeAgentNs => Topology.HomeNamespace;

    public string NodeNs => Topology.ForeignNamespace(1);

    public string TunName => _lab.Name("tun");

    private NamespaceTopology Topology => _topology ?? throw new InvalidOperationException("the topology is not built");

    public HomeAgentHost HomeAgent { get; private set; } = null!;

    public MobileNodeHost Node { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        await _lab.InitializeAsync();
        try
        {
            await Task.Run(Build);
            await WaitAsync(() => HomeAgent.Plane.IsRegistered(HomeAddress) && Node.Engine.View.Registered, TimeSpan.FromSeconds(10), "the node never registered");
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    public async Task DisposeAsync()
    {
        if (Node is not null)
        {
            await Node.DisposeAsync();
        }

        if (HomeAgent is not null)
        {
            await HomeAgent.DisposeAsync();
        }

        if (_proxy is not null)
        {
            await _proxy.DisposeAsync();
        }

        foreach (var transport in new[] { _homeAgentRaw, _nodeRaw })
        {
            if (transport is not null)
            {
                await transport.DisposeAsync();
            }
        }

        await _lab.DisposeAsync();
    }

    public Task<(int ExitCode, string Output)> ExecAsync(string ns, TimeSpan timeout, params string[] command) =>
        LabScratch.ExecAsync(ns, timeout, command);

    public static async Task WaitAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException(what);
            }

            await Task.Delay(50);
        }
    }

    private void Build()
    {
        _topology = _lab.Topology(nodes: 1, correspondent: true);
        foreach (var (ns, link) in new[] { (CorrespondentNs, _topology.CorrespondentLink), (HomeAgentNs, _topology.HomeAgentLink) })
        {
            // Finished checksums on the home link, as from a real NIC (see lab/txcsum_off.py and docs/dataplane.md).
            Shell.Run("ip", "netns", "exec", ns, Shell.Python, Path.Combine(AppContext.BaseDirectory, "lab", "txcsum_off.py"), link);
        }

        var homeLink = _topology.HomeAgentLink;
        var nodeLink = _topology.NodeLink(1);
        var provisioning = new MobileNodeProvisioning(HomeAddress, RandomNumberGenerator.GetBytes(32), new Spi(300), new Spi(301));
        _homeAgentRaw = NetworkNamespace.Run(HomeAgentNs, () => RawSocketTransport.Open(new RawSocketTransportOptions
        {
            InterfaceName = homeLink,
            LocalAddresses = [HomeAgentAddress],
        }));
        _proxy = NetworkNamespace.Run(HomeAgentNs, () => HomeLinkProxy.Open(new HomeLinkProxyOptions
        {
            InterfaceName = homeLink,
            HomeAgentAddress = HomeAgentAddress,
        }));
        HomeAgent = new HomeAgentHost(_homeAgentRaw, _proxy,
            new HomeAgentOptions { Address = HomeAgentAddress, SendBindingRefreshRequest = true }, provisioning);

        _nodeRaw = NetworkNamespace.Run(NodeNs, () => RawSocketTransport.Open(new RawSocketTransportOptions
        {
            InterfaceName = nodeLink,
            LocalAddresses = [CareOf],
        }));
        Node = new MobileNodeHost(_nodeRaw,
            mtu => NetworkNamespace.Run(NodeNs, () => TunTransport.Open(new TunTransportOptions { InterfaceName = TunName, Address = HomeAddress, Mtu = mtu })),
            new MobileNodeOptions { Provisioning = provisioning, HomeAgentAddress = HomeAgentAddress, CareOfAddress = CareOf });

        // Ordinary programs on the node reach everything through the tun from the HoA; only the home
        // agent itself is reached on the care-of link.
        Shell.Run("ip", "-n", NodeNs, "-6", "route", "add", $"{HomeAgentAddress}/128", "via", RouterForeign.ToString(), "dev", nodeLink);
        Shell.Run("ip", "-n", NodeNs, "-6", "route", "replace", "default", "dev", TunName, "src", HomeAddress.ToString());
        Node.Run(Node.Engine.Start);
    }
}
