using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace MipKeyAgent.Tools.Lab;

/// <summary>
/// The lab's network-namespace topology, defined once: <c>mipkey lab up|down|status</c> (and
/// <c>lab/topology.sh</c>, which calls it) builds it with the prefix <c>mk-</c>, lab/tunnel-demo.sh
/// with <c>td-</c> and a correspondent, the lab tests with a per-run prefix.
/// <code>
///  ns P+home                    ns P+rtr (forwarding)                                ns P+fl1
///  HA 2001:db8:1::1 (P+h0) --veth-- (P+r0) 2001:db8:1::ff | (P+r1) 2001:db8:100::ff --veth-- (P+f1) care-of 2001:db8:100::1
///                                                         | (P+r2) 2001:db8:101::ff --veth-- (P+f2) ... ns P+fl2
/// </code>
/// With a correspondent the home link is a bridge P+br in the router namespace carrying the
/// router's home address, with two ports: P+r0 (towards the home agent) and P+rc towards ns P+cn,
/// where the correspondent has 2001:db8:1::10 on P+c0. Home addresses 2001:db8:2::N are the
/// scenarios' convention (reached through the tunnel only); a home address on the home link
/// (<see cref="OnLinkHomeAddress"/>) is what the home agent proxies for a correspondent.
/// Every namespace and interface name starts with the prefix, so parallel runs never collide.
/// </summary>
public sealed partial class NamespaceTopology
{
    public const string DefaultPrefix = "mk-";
    public const int MaxNodes = 9;
    public const string HomeAgentAddress = "2001:db8:1::1";
    public const string RouterHomeAddress = "2001:db8:1::ff";
    public const string CorrespondentAddress = "2001:db8:1::10";
    public const string OnLinkHomeAddress = "2001:db8:1::100";
    private const int LinkPrefixLength = 64;

    // Interface names are at most 15 characters: the prefix leaves room for the longest role ("home", "tun").
    private const int MaxPrefixLength = 10;

    public NamespaceTopology(string prefix = DefaultPrefix, int nodes = 1, bool correspondent = false)
    {
        Prefix = PrefixPattern().IsMatch(prefix) ? prefix
            : throw new ArgumentException($"lab prefix \"{prefix}\": give 1 to {MaxPrefixLength} of a-z, 0-9 and -, starting with a letter or digit", nameof(prefix));
        Nodes = nodes is >= 0 and <= MaxNodes ? nodes
            : throw new ArgumentOutOfRangeException(nameof(nodes), nodes, $"lab nodes: give 0 to {MaxNodes} foreign links");
        HasCorrespondent = correspondent;
    }

    public string Prefix { get; }

    /// <summary>Foreign links, one per mobile node (0: only the home link and the router).</summary>
    public int Nodes { get; }

    public bool HasCorrespondent { get; }

    public string HomeNamespace => Prefix + "home";

    public string RouterNamespace => Prefix + "rtr";

    public string CorrespondentNamespace => Prefix + "cn";

    /// <summary>The home agent's interface on the home link.</summary>
    public string HomeAgentLink => Prefix + "h0";

    /// <summary>The router's end of the home agent's veth (a bridge port with a correspondent).</summary>
    public string RouterHomeLink => Prefix + "r0";

    public string Bridge => Prefix + "br";

    public string CorrespondentLink => Prefix + "c0";

    public string CorrespondentPort => Prefix + "rc";

    /// <summary>The interface carrying the router's home address: the bridge with a correspondent, else its veth end.</summary>
    public string RouterHomeInterface => HasCorrespondent ? Bridge : RouterHomeLink;

    /// <summary>Every namespace this topology builds, in build order.</summary>
    public IReadOnlyList<string> Namespaces =>
    [
        HomeNamespace,
        RouterNamespace,
        .. HasCorrespondent ? new[] { CorrespondentNamespace } : [],
        .. Enumerable.Range(1, Nodes).Select(ForeignNamespace),
    ];

    public string ForeignNamespace(int node) => Prefix + "fl" + Number(node);

    /// <summary>The mobile node's interface on foreign link <paramref name="node"/> (1-based).</summary>
    public string NodeLink(int node) => Prefix + "f" + Number(node);

    public string RouterForeignLink(int node) => Prefix + "r" + Number(node);

    /// <summary>The router's address on foreign link <paramref name="node"/>: 2001:db8:100::ff for the first.</summary>
    public static string RouterForeignAddress(int node) => ForeignNet(node) + "::ff";

    /// <summary>The care-of address on foreign link <paramref name="node"/>: 2001:db8:100::1 for the first.</summary>
    public static string CareOfAddress(int node) => ForeignNet(node) + "::1";

    /// <summary>The scenarios' home address of node <paramref name="node"/>: 2001:db8:2::1 for the first.</summary>
    public static string HomeAddress(int node) => "2001:db8:2::" + Number(node);

    /// <summary>True for a namespace of this prefix's topology, whatever its node count or correspondent.</summary>
    public bool Owns(string ns) =>
        ns.StartsWith(Prefix, StringComparison.Ordinal) && OwnedRole().IsMatch(ns.AsSpan(Prefix.Length));

    /// <summary>The commands that build the topology, in order (each an argument vector, program first).</summary>
    public IReadOnlyList<string[]> BuildCommands()
    {
        var commands = new List<string[]>();
        foreach (var ns in Namespaces)
        {
            commands.Add(["ip", "netns", "add", ns]);
            commands.Add(["ip", "-n", ns, "link", "set", "lo", "up"]);
        }

        commands.Add(["ip", "netns", "exec", RouterNamespace, "sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"]);
        AddHomeLink(commands);
        for (var node = 1; node <= Nodes; node++)
        {
            // nodad: the addresses are usable at once instead of after a second of duplicate address detection.
            AddVeth(commands, RouterNamespace, RouterForeignLink(node), ForeignNamespace(node), NodeLink(node));
            AddAddress(commands, RouterNamespace, RouterForeignLink(node), RouterForeignAddress(node));
            AddAddress(commands, ForeignNamespace(node), NodeLink(node), CareOfAddress(node));
            commands.Add(["ip", "-n", ForeignNamespace(node), "route", "add", "default", "via", RouterForeignAddress(node)]);
        }

        return commands;
    }

    /// <summary>Removes every namespace of this prefix (also those of a build with more nodes), then builds; a failed build is removed.</summary>
    public void Up(Func<IReadOnlyList<string>, string> run)
    {
        ArgumentNullException.ThrowIfNull(run);
        Down(run);
        try
        {
            foreach (var command in BuildCommands())
            {
                run(command);
            }

            WaitUntilSettled(run);
        }
        catch
        {
            Down(run);
            throw;
        }
    }

    /// <summary>Deletes the namespaces of this prefix (their veths and bridge go with them); nothing to delete is no error.</summary>
    public void Down(Func<IReadOnlyList<string>, string> run)
    {
        ArgumentNullException.ThrowIfNull(run);
        var failures = new List<string>();
        foreach (var ns in Existing(run))
        {
            // Processes still inside keep the namespace's links alive: whoever started them stops them first.
            try
            {
                run(["ip", "netns", "del", ns]);
            }
            catch (InvalidOperationException e)
            {
                failures.Add(e.Message.Trim());
            }
        }

        if (failures.Count > 0)
        {
            throw new InvalidOperationException(string.Join("; ", failures));
        }
    }

    /// <summary>The global addresses and routes of each namespace of this prefix, or a line saying it is down.</summary>
    public string Status(Func<IReadOnlyList<string>, string> run)
    {
        ArgumentNullException.ThrowIfNull(run);
        var existing = Existing(run);
        if (existing.Count == 0)
        {
            return $"lab topology (prefix {Prefix}): down\n";
        }

        var text = new StringBuilder();
        foreach (var ns in existing)
        {
            text.Append("== ").Append(ns).Append('\n');
            text.Append(run(["ip", "-n", ns, "-6", "-br", "addr", "show", "scope", "global"]));
            foreach (var route in Lines(run(["ip", "-n", ns, "-6", "route", "show"])).Where(r => !r.StartsWith("fe80", StringComparison.Ordinal)))
            {
                text.Append("   route ").Append(route).Append('\n');
            }
        }

        return text.ToString();
    }

    /// <summary>
    /// Waits until no address in the topology is tentative: fresh links keep their link-local
    /// addresses in duplicate address detection for a second or two, and the first datagrams
    /// would wait in the kernels' neighbour queues.
    /// </summary>
    public void WaitUntilSettled(Func<IReadOnlyList<string>, string> run)
    {
        ArgumentNullException.ThrowIfNull(run);
        foreach (var ns in Namespaces)
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (run(["ip", "-n", ns, "-6", "addr", "show", "tentative"]).Trim().Length > 0)
            {
                if (DateTime.UtcNow > deadline)
                {
                    throw new TimeoutException($"addresses in {ns} stayed tentative");
                }

                Thread.Sleep(100);
            }
        }
    }

    private void AddHomeLink(List<string[]> commands)
    {
        AddVeth(commands, RouterNamespace, RouterHomeLink, HomeNamespace, HomeAgentLink);
        if (HasCorrespondent)
        {
            // No multicast snooping: without an MLD querier it could keep solicited-node traffic from the home agent's proxy.
            commands.Add(["ip", "-n", RouterNamespace, "link", "add", Bridge, "type", "bridge", "mcast_snooping", "0"]);
            AddVeth(commands, RouterNamespace, CorrespondentPort, CorrespondentNamespace, CorrespondentLink);
            commands.Add(["ip", "-n", RouterNamespace, "link", "set", RouterHomeLink, "master", Bridge]);
            commands.Add(["ip", "-n", RouterNamespace, "link", "set", CorrespondentPort, "master", Bridge]);
            commands.Add(["ip", "-n", RouterNamespace, "link", "set", RouterHomeLink, "up"]);
            commands.Add(["ip", "-n", RouterNamespace, "link", "set", CorrespondentPort, "up"]);
            AddAddress(commands, CorrespondentNamespace, CorrespondentLink, CorrespondentAddress);
            commands.Add(["ip", "-n", CorrespondentNamespace, "route", "add", "default", "via", RouterHomeAddress]);
        }

        AddAddress(commands, RouterNamespace, RouterHomeInterface, RouterHomeAddress);
        AddAddress(commands, HomeNamespace, HomeAgentLink, HomeAgentAddress);
        commands.Add(["ip", "-n", HomeNamespace, "route", "add", "default", "via", RouterHomeAddress]);
    }

    private static void AddVeth(List<string[]> commands, string ns, string link, string peerNs, string peer) =>
        commands.Add(["ip", "-n", ns, "link", "add", link, "type", "veth", "peer", "name", peer, "netns", peerNs]);

    private static void AddAddress(List<string[]> commands, string ns, string link, string address)
    {
        commands.Add(["ip", "-n", ns, "addr", "add", $"{address}/{LinkPrefixLength}", "dev", link, "nodad"]);
        commands.Add(["ip", "-n", ns, "link", "set", link, "up"]);
    }

    private List<string> Existing(Func<IReadOnlyList<string>, string> run) =>
        [.. Lines(run(["ip", "netns", "list"])).Select(line => line.Split(' ')[0]).Where(Owns).Order(StringComparer.Ordinal)];

    private static string[] Lines(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    // 2001:db8:100 for the first foreign link, 2001:db8:101 for the second: the node number plus 99, written as its decimal digits.
    private static string ForeignNet(int node) => "2001:db8:" + Number(99 + node);

    private static string Number(int value) => value.ToString(CultureInfo.InvariantCulture);

    [GeneratedRegex("^[a-z0-9][a-z0-9-]{0,9}$")]
    private static partial Regex PrefixPattern();

    [GeneratedRegex("^(home|rtr|cn|fl[0-9])$")]
    private static partial Regex OwnedRole();
}
