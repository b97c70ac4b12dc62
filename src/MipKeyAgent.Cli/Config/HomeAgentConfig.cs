using MipKeyAgent.Hosting;
using MipKeyAgent.Protocol;
using MipKeyAgent.Protocol.Keys;
using MipKeyAgent.Esp;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Cli.Config;

/// <summary>
/// A home agent's provisioning file:
/// <code>
/// [home-agent]                       # optional; command-line options override it
/// address = 2001:db8:1::1
/// mode = explicit                    # or implicit
/// rekey-interval = 10m
/// vendor-id = 32473
/// max-binding-lifetime = 420s
/// binding-refresh-request = yes
///
/// [mobile-node mn1]                  # one per mobile node; the label names it in logs
/// home-address = 2001:db8:2::1
/// initialization-key = hex:...       # or base64:... or file:keys/mn1.key (32 octets)
/// spi-mn-to-ha = 1000                # IK SPIs, [256, 2^31), unique on this HA
/// spi-ha-to-mn = 1001
/// suite = aes-256-gcm                # optional; or aes-128-cbc-hmac-sha256
/// </code>
/// </summary>
internal sealed class HomeAgentConfig
{
    public required string File { get; init; }

    public Ipv6Address? Address { get; init; }

    public uint VendorId { get; init; } = MipKey.DefaultVendorId;

    public KeyExchangeMode Mode { get; init; } = KeyExchangeMode.Explicit;

    public TimeSpan? RekeyInterval { get; init; }

    public TimeSpan MaxBindingLifetime { get; init; } = TimeSpan.FromSeconds(420);

    public bool SendBindingRefreshRequest { get; init; }

    public required IReadOnlyList<ProvisionedNode> Nodes { get; init; }

    public static HomeAgentConfig Load(string path)
    {
        var text = ConfigFiles.ReadText(path);
        return Parse(path, text, Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".", checkMode: true);
    }

    /// <summary>Parses <paramref name="text"/> as the file <paramref name="file"/> (key files resolve against <paramref name="baseDirectory"/>).</summary>
    public static HomeAgentConfig Parse(string file, string text, string baseDirectory, bool checkMode = false)
    {
        var document = ConfigDocument.Parse(file, text);
        Ipv6Address? address = null;
        uint vendorId = MipKey.DefaultVendorId;
        var mode = KeyExchangeMode.Explicit;
        TimeSpan? rekey = null;
        var maxLifetime = TimeSpan.FromSeconds(420);
        bool brr = false;
        bool sawHomeAgent = false;
        var provisioned = new NodeTable();

        foreach (var section in document.Sections)
        {
            var r = new SectionReader(file, section);
            switch (section.Name)
            {
                case "home-agent":
                    if (sawHomeAgent)
                    {
                        throw new ConfigException(file, section.Line, null, "a second [home-agent] section");
                    }
                    if (section.Label is not null)
                    {
                        throw new ConfigException(file, section.Line, null, "[home-agent] takes no label");
                    }
                    sawHomeAgent = true;
                    if (r.Find("address") is { } a) address = r.Address(a);
                    if (r.Find("vendor-id") is { } v) vendorId = r.UInt32(v);
                    if (r.Find("mode") is { } m) mode = r.Mode(m);
                    if (r.Find("rekey-interval") is { } ri) rekey = r.Duration(ri);
                    if (r.Find("max-binding-lifetime") is { } ml) maxLifetime = r.Duration(ml);
                    if (r.Find("binding-refresh-request") is { } b) brr = r.Boolean(b);
                    r.RejectUnknown();
                    break;
                case "mobile-node":
                    AddNode(file, section, r, baseDirectory, provisioned);
                    break;
                default:
                    throw new ConfigException(file, section.Line, null, $"unknown section {section.Title} (expected [home-agent] or [mobile-node NAME])");
            }
        }
        if (provisioned.Nodes.Count == 0)
        {
            throw new ConfigException(file, 0, null, "no [mobile-node NAME] section: a home agent needs at least one provisioned mobile node");
        }
        if (checkMode && provisioned.InlineKeys)
        {
            ConfigFiles.CheckPrivate(file, 0, null, "it holds initialization keys");
        }
        return new HomeAgentConfig
        {
            File = file,
            Address = address,
            VendorId = vendorId,
            Mode = mode,
            RekeyInterval = rekey,
            MaxBindingLifetime = maxLifetime,
            SendBindingRefreshRequest = brr,
            Nodes = provisioned.Nodes,
        };
    }

    /// <summary>The nodes read so far, and what two of them must not share.</summary>
    private sealed class NodeTable
    {
        public List<ProvisionedNode> Nodes { get; } = [];

        public Dictionary<Ipv6Address, string> ByHomeAddress { get; } = [];

        public Dictionary<uint, string> BySpi { get; } = [];

        public HashSet<string> ByName { get; } = new(StringComparer.Ordinal);

        public bool InlineKeys { get; set; }
    }

    /// <summary>One [mobile-node NAME] section: a name, home address and SPIs no other node has, its suite and initialization key.</summary>
    private static void AddNode(string file, ConfigSection section, SectionReader r, string baseDirectory, NodeTable table)
    {
        var name = section.Label ?? $"mn{table.Nodes.Count + 1}";
        if (!table.ByName.Add(name))
        {
            throw new ConfigException(file, section.Line, null, $"a second [mobile-node {name}] section");
        }
        var homeEntry = r.Require("home-address");
        var home = r.Address(homeEntry);
        if (table.ByHomeAddress.TryGetValue(home, out var other))
        {
            throw r.Error(homeEntry, $"home address {home} is already {other}'s");
        }
        var mnToHaEntry = r.Require("spi-mn-to-ha");
        var haToMnEntry = r.Require("spi-ha-to-mn");
        var mnToHa = r.Spi(mnToHaEntry);
        var haToMn = r.Spi(haToMnEntry);
        CheckSpi(r, mnToHaEntry, mnToHa, table.BySpi);
        table.BySpi[mnToHa.Value] = $"{name}'s spi-mn-to-ha";
        CheckSpi(r, haToMnEntry, haToMn, table.BySpi);
        table.BySpi[haToMn.Value] = $"{name}'s spi-ha-to-mn";
        var suite = r.Find("suite") is { } s ? r.Suite(s) : EspSuite.AesGcm256;
        var key = r.Key(r.Require("initialization-key"), baseDirectory, out bool inline);
        table.InlineKeys |= inline;
        r.RejectUnknown();
        table.ByHomeAddress[home] = name;
        table.Nodes.Add(new ProvisionedNode(name, new MobileNodeProvisioning(home, key, mnToHa, haToMn, suite), section.Line));
    }

    private static void CheckSpi(SectionReader r, ConfigEntry entry, Spi spi, Dictionary<uint, string> bySpi)
    {
        if (bySpi.TryGetValue(spi.Value, out var owner))
        {
            throw r.Error(entry, $"SPI {spi.Value} is already {owner} (IK SPIs must be unique on one home agent)");
        }
    }

    /// <summary>Redacted summary, safe to log.</summary>
    public override string ToString() =>
        $"{File}: address {Address?.ToString() ?? "(command line)"} mode {Mode} rekey {(RekeyInterval is { } r ? ConfigValues.FormatDuration(r) : "off")} " +
        $"nodes [{string.Join("; ", Nodes)}]";
}
