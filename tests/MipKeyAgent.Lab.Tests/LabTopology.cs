using MipKeyAgent.Tools.Lab;
using MipKeyAgent.Transport;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Lab.Tests;

/// <summary>
/// The lab topology without foreign links (<see cref="NamespaceTopology"/>: home namespace, router
/// namespace, the home link between them) plus a tap in the router namespace standing in for the
/// first foreign link, built once for the test class and torn down after it:
/// <code>
///  TapTransport (MN)               ns "rtr"                                ns "home"
///  2001:db8:100::1  ==tap==  2001:db8:100::ff [forwarding] 2001:db8:1::ff ==veth== 2001:db8:1::1  RawSocketTransport (HA)
/// </code>
/// The tap transport plays a mobile node on its care-of link, doing its own neighbour
/// discovery against the router namespace's kernel; the raw socket transport sits on the
/// home agent's interface beside a kernel that knows nothing of Mobile IPv6 or ESP.
/// Names carry a per-run prefix so parallel or crashed runs never collide; everything is
/// deleted in <see cref="DisposeAsync"/>, also when setting up failed halfway.
/// </summary>
public sealed class LabTopology : IAsyncLifetime
{
    public static readonly Ipv6Address CareOfAddress = Ipv6Address.Parse(NamespaceTopology.CareOfAddress(1));
    public static readonly Ipv6Address RouterTapAddress = Ipv6Address.Parse(NamespaceTopology.RouterForeignAddress(1));
    public static readonly Ipv6Address RouterHomeAddress = Ipv6Address.Parse(NamespaceTopology.RouterHomeAddress);
    public static readonly Ipv6Address HomeAgentAddress = Ipv6Address.Parse(NamespaceTopology.HomeAgentAddress);
    public static readonly Ipv6Address HomeAddress = Ipv6Address.Parse(NamespaceTopology.HomeAddress(1));

    private readonly LabScratch _lab = new("mk");
    private NamespaceTopology? _topology;

    public string RouterNamespace => Topology.RouterNamespace;

    public string HomeNamespace => Topology.HomeNamespace;

    public string TapName => _lab.Name("t");

    public string RouterVeth => Topology.RouterHomeLink;

    public string HomeVeth => Topology.HomeAgentLink;

    private NamespaceTopology Topology => _topology ?? throw new InvalidOperationException("the topology is not built");

    public TapTransport Tap { get; private set; } = null!;

    public RawSocketTransport HomeAgent { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        await _lab.InitializeAsync();
        try
        {
            await Task.Run(Build);
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    public async Task DisposeAsync()
    {
        // Transports first (closing the tap's descriptor deletes the tap), then the namespaces,
        // which take their veth ends with them.
        if (Tap is not null)
        {
            await Tap.DisposeAsync();
        }

        if (HomeAgent is not null)
        {
            await HomeAgent.DisposeAsync();
        }

        await _lab.DisposeAsync();
    }

    /// <summary>Runs a command inside a namespace as a child process (<c>ip netns exec</c>).</summary>
    public Task<(int ExitCode, string Output)> ExecAsync(string ns, TimeSpan timeout, params string[] command) =>
        LabScratch.ExecAsync(ns, timeout, command);

    private void Build()
    {
        _topology = _lab.Topology(nodes: 0);

        // The tap is created inside the router namespace, its kernel side gets the router's
        // address; the transport's host end answers for the care-of address.
        Tap = NetworkNamespace.Run(RouterNamespace, () => TapTransport.Open(new TapTransportOptions
        {
            InterfaceName = TapName,
            Addresses = [CareOfAddress],
            DefaultRouter = RouterTapAddress,
        }));
        Shell.Run("ip", "-n", RouterNamespace, "addr", "add", $"{RouterTapAddress}/64", "dev", TapName, "nodad");
        Shell.Run("ip", "-n", RouterNamespace, "link", "set", TapName, "up");

        HomeAgent = NetworkNamespace.Run(HomeNamespace, () => RawSocketTransport.Open(new RawSocketTransportOptions
        {
            InterfaceName = HomeVeth,
            LocalAddresses = [HomeAgentAddress],
        }));

        _topology.WaitUntilSettled(Shell.Command);
    }
}
