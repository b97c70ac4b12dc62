using MipKeyAgent.Transport;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Lab.Tests;

/// <summary>
/// Two network namespaces and a tap, built once for the test class and torn down after it:
/// <code>
///  TapTransport (MN)        ns "router"                          ns "home"
///  fd00:2::100  ==tap==  fd00:2::1 [forwarding] fd00:1::1 ==veth== fd00:1::2  RawSocketTransport (HA)
/// </code>
/// The tap transport plays a mobile node on its care-of link, doing its own neighbour
/// discovery against the router namespace's kernel; the raw socket transport sits on the
/// home agent's interface beside a kernel that knows nothing of Mobile IPv6 or ESP.
/// Names carry a per-run suffix so parallel or crashed runs never collide; everything is
/// deleted in <see cref="DisposeAsync"/>, also when setting up failed halfway.
/// </summary>
public sealed class LabTopology : IAsyncLifetime
{
    public static readonly Ipv6Address CareOfAddress = Ipv6Address.Parse("fd00:2::100");
    public static readonly Ipv6Address RouterTapAddress = Ipv6Address.Parse("fd00:2::1");
    public static readonly Ipv6Address RouterHomeAddress = Ipv6Address.Parse("fd00:1::1");
    public static readonly Ipv6Address HomeAgentAddress = Ipv6Address.Parse("fd00:1::2");
    public static readonly Ipv6Address HomeAddress = Ipv6Address.Parse("fd00:3::100");

    private readonly LabScratch _lab = new("mk");

    public string RouterNamespace => _lab.Name("r");

    public string HomeNamespace => _lab.Name("h");

    public string TapName => _lab.Name("t");

    public string RouterVeth => _lab.Name("vr");

    public string HomeVeth => _lab.Name("vh");

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
        _lab.Namespace("r");
        _lab.Namespace("h");

        Shell.Run("ip", "-n", RouterNamespace, "link", "add", RouterVeth, "type", "veth", "peer", "name", HomeVeth, "netns", HomeNamespace);
        Shell.Run("ip", "netns", "exec", RouterNamespace, "sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1");

        // nodad: the addresses are usable at once instead of after a second of duplicate address detection.
        Shell.Run("ip", "-n", RouterNamespace, "addr", "add", $"{RouterHomeAddress}/64", "dev", RouterVeth, "nodad");
        Shell.Run("ip", "-n", RouterNamespace, "link", "set", RouterVeth, "up");
        Shell.Run("ip", "-n", HomeNamespace, "addr", "add", $"{HomeAgentAddress}/64", "dev", HomeVeth, "nodad");
        Shell.Run("ip", "-n", HomeNamespace, "link", "set", HomeVeth, "up");
        Shell.Run("ip", "-n", HomeNamespace, "route", "add", "default", "via", RouterHomeAddress.ToString());

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

        _lab.WaitUntilSettled();
    }
}
