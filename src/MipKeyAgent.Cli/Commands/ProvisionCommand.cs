using System.CommandLine;
using System.Globalization;
using MipKeyAgent.Cli.Config;
using MipKeyAgent.Hosting;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Cli.Commands;

/// <summary>
/// <c>mipkey provision add | rotate-ik | remove</c>: edits the HA's provisioning file (atomic
/// rewrite, mode 0600) and its binding store, with an append-only audit log. Stop the HA first:
/// it reads the file at start, and a running HA would write the removed binding back.
/// </summary>
internal static class ProvisionCommand
{
    public static Command Create(TextWriter output)
    {
        var command = new Command("provision",
            "Adds, re-keys or removes a mobile node in the home agent's provisioning file (and its store). Stop the HA first and start it " +
            "again after. Every change is appended to an audit log (who, when, what; never key bytes).\n\n" +
            "Examples:\n" +
            "  mipkey provision add -c ha.conf --name mn3 --home-address 2001:db8:2::3 --spi-mn-to-ha 1004 --spi-ha-to-mn 1005 --new-key-file mn3.key\n" +
            "  mipkey provision rotate-ik -c ha.conf --name mn1 --new-key-file mn1-2025.key --store mipkey-ha.db\n" +
            "  mipkey provision remove -c ha.conf --name mn2 --store mipkey-ha.db");
        command.Subcommands.Add(Add(output));
        command.Subcommands.Add(RotateIk(output));
        command.Subcommands.Add(Remove(output));
        return command;
    }

    private static Option<FileInfo> ConfigOption() => new("--config", "-c") { Description = "The HA's provisioning file (mode 0600).", Required = true };

    private static Option<string> NameOption() => new("--name") { Description = "The node's label: the NAME of [mobile-node NAME].", Required = true };

    private static Option<string?> AuditOption() => new("--audit-log") { Description = "Append-only audit log (mode 0600). Default: <config>.audit." };

    private static Option<string?> NewKeyOption(string what) => new("--new-key-file")
    {
        Description = $"A NEW file (refused if it exists) that receives {what}: 32 random octets as hex, mode 0600. The key is never printed.",
    };

    private static Option<string?> StoreOption() => new("--store")
    {
        Description = $"The HA's binding store (default {HomeAgentStores.DefaultPath}); the node's binding and dynamic keys are removed from it. No store: nothing to remove.",
    };

    private static Option<string?> MasterKeyOption() => new("--master-key") { Description = "The store's master key file (default <store>.key)." };

    private static Command Add(TextWriter output)
    {
        var config = ConfigOption();
        var name = NameOption();
        var home = new Option<string>("--home-address") { Description = "The node's home address.", Required = true };
        var mnToHa = new Option<uint>("--spi-mn-to-ha") { Description = "IK SPI MN->HA, [256, 2^31), unique on this HA.", Required = true };
        var haToMn = new Option<uint>("--spi-ha-to-mn") { Description = "IK SPI HA->MN, [256, 2^31), unique on this HA.", Required = true };
        var suite = new Option<string?>("--suite") { Description = "aes-256-gcm (default) or aes-128-cbc-hmac-sha256." };
        var keyFile = new Option<string?>("--key-file") { Description = "An existing key file (mode 0600) holding the node's initialization key." };
        var newKey = NewKeyOption("a fresh initialization key");
        var audit = AuditOption();
        var command = new Command("add",
            "Adds a [mobile-node NAME] section. The initialization key is an existing 0600 key file (--key-file) or a fresh one written to a new " +
            "file (--new-key-file); it never appears on the command line or the output.\n\n" +
            "Examples:\n" +
            "  mipkey provision add -c ha.conf --name mn3 --home-address 2001:db8:2::3 --spi-mn-to-ha 1004 --spi-ha-to-mn 1005 --new-key-file mn3.key\n" +
            "  mipkey provision add -c ha.conf --name mn4 --home-address 2001:db8:2::4 --spi-mn-to-ha 1006 --spi-ha-to-mn 1007 --key-file keys/mn4.key")
        {
            config, name, home, mnToHa, haToMn, suite, keyFile, newKey, audit,
        };
        command.SetAction(parse =>
        {
            var path = parse.GetRequiredValue(config).FullName;
            var label = CheckName(path, parse.GetRequiredValue(name));
            var (text, _) = ProvisioningFile.Read(path);
            var existing = parse.GetValue(keyFile);
            var created = parse.GetValue(newKey);
            if ((existing is null) == (created is null))
            {
                throw new ConfigException(path, 0, "--key-file", "give exactly one of --key-file (an existing key file) and --new-key-file (a fresh key)");
            }
            var keyPath = Path.GetFullPath(existing ?? created!);
            var homeAddress = Ipv6Address.Parse(parse.GetRequiredValue(home)).ToString();
            var newText = ProvisioningFile.Add(text, label, homeAddress, parse.GetValue(mnToHa), parse.GetValue(haToMn), parse.GetValue(suite), keyPath);
            if (created is not null)
            {
                ProvisioningFile.CreateKeyFile(keyPath);
            }
            try
            {
                ProvisioningFile.Write(path, newText);
            }
            catch when (created is not null)
            {
                File.Delete(keyPath);
                throw;
            }
            ProvisioningFile.Audit(parse.GetValue(audit) ?? path + ".audit", "add",
                string.Create(CultureInfo.InvariantCulture, $"config={path} node={label} home-address={homeAddress} spi-mn-to-ha={parse.GetValue(mnToHa)} " +
                $"spi-ha-to-mn={parse.GetValue(haToMn)} key-file={keyPath}{(created is null ? "" : " (generated)")}"));
            output.WriteLine($"{label}: added to {path} (initialization key in {keyPath}); restart the HA to serve it");
            return 0;
        });
        return command;
    }

    private static Command RotateIk(TextWriter output)
    {
        var config = ConfigOption();
        var name = NameOption();
        var newKey = NewKeyOption("the new initialization key");
        newKey.Required = true;
        var store = StoreOption();
        var masterKey = MasterKeyOption();
        var audit = AuditOption();
        var command = new Command("rotate-ik",
            "Replaces a node's initialization key with a fresh random one, written only to a new 0600 file, points the provisioning file at it, " +
            "and removes the node's binding and dynamic keys from the store: keys issued under the old IK are gone, the old IK is refused, and " +
            "the node re-initializes once it holds the new key. The IK SPIs stay; retired SPIs and IK sequence reservations are kept.\n\n" +
            "Examples:\n" +
            "  mipkey provision rotate-ik -c ha.conf --name mn1 --new-key-file /etc/mipkey/mn1-2.key\n" +
            "  mipkey provision rotate-ik -c ha.conf --name mn1 --new-key-file mn1-2.key --store /var/lib/mipkey/ha.db --master-key /etc/mipkey/master.key")
        {
            config, name, newKey, store, masterKey, audit,
        };
        command.SetAction(parse =>
        {
            var path = parse.GetRequiredValue(config).FullName;
            var label = parse.GetRequiredValue(name);
            var (text, current) = ProvisioningFile.Read(path);
            var node = FindNode(current, label);
            var keyPath = Path.GetFullPath(parse.GetValue(newKey) ?? throw new ConfigException(path, 0, "--new-key-file", "required"));
            var newText = ProvisioningFile.ReplaceKey(path, text, label, keyPath);
            ProvisioningFile.CreateKeyFile(keyPath);
            try
            {
                ProvisioningFile.Write(path, newText);
            }
            catch
            {
                File.Delete(keyPath);
                throw;
            }
            var storeNote = RemoveBinding(parse.GetValue(store), parse.GetValue(masterKey), node.Provisioning.HomeAddress);
            ProvisioningFile.Audit(parse.GetValue(audit) ?? path + ".audit", "rotate-ik",
                $"config={path} node={label} home-address={node.Provisioning.HomeAddress} new-key-file={keyPath} store={storeNote}");
            output.WriteLine($"{label}: new initialization key in {keyPath}; {storeNote}; restart the HA and give the node the new key");
            return 0;
        });
        return command;
    }

    private static Command Remove(TextWriter output)
    {
        var config = ConfigOption();
        var name = NameOption();
        var store = StoreOption();
        var masterKey = MasterKeyOption();
        var audit = AuditOption();
        var command = new Command("remove",
            "Removes a node's [mobile-node NAME] section and its binding and dynamic keys from the store. Its key file is left alone.\n\n" +
            "Examples:\n" +
            "  mipkey provision remove -c ha.conf --name mn2\n" +
            "  mipkey provision remove -c ha.conf --name mn2 --store /var/lib/mipkey/ha.db --audit-log /var/log/mipkey-provision.log")
        {
            config, name, store, masterKey, audit,
        };
        command.SetAction(parse =>
        {
            var path = parse.GetRequiredValue(config).FullName;
            var label = parse.GetRequiredValue(name);
            var (text, current) = ProvisioningFile.Read(path);
            var node = FindNode(current, label);
            if (current.Nodes.Count == 1)
            {
                throw new ConfigException(path, node.Line, null, $"{label} is the only node; a home agent needs at least one");
            }
            ProvisioningFile.Write(path, ProvisioningFile.Remove(path, text, label));
            var storeNote = RemoveBinding(parse.GetValue(store), parse.GetValue(masterKey), node.Provisioning.HomeAddress);
            ProvisioningFile.Audit(parse.GetValue(audit) ?? path + ".audit", "remove",
                $"config={path} node={label} home-address={node.Provisioning.HomeAddress} store={storeNote}");
            output.WriteLine($"{label}: removed from {path}; {storeNote}");
            return 0;
        });
        return command;
    }

    private static ProvisionedNode FindNode(HomeAgentConfig config, string label) =>
        config.Nodes.FirstOrDefault(n => n.Name == label) ?? throw new ConfigException(config.File, 0, null, $"no [mobile-node {label}] section");

    private static string CheckName(string path, string label) =>
        label.Length > 0 && label.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')
            ? label
            : throw new ConfigException(path, 0, "--name", $"'{label}' is not a node label (letters, digits, - _ .)");

    private static string RemoveBinding(string? storePath, string? masterKey, Ipv6Address home)
    {
        var path = storePath ?? HomeAgentStores.DefaultPath;
        if (!File.Exists(path))
        {
            return $"no store at {path} (nothing to remove)";
        }
        using var opened = HomeAgentStores.Open(path, masterKey, createIfMissing: false);
        // The dynamic SPIs are retired first (PROTOCOL.md section 3: an SPI never names another
        // secret while the HA keeps its state), then the record goes; its secrets are zeroed here.
        if (opened.Store.Load(home) is { } record)
        {
            var retired = new List<uint>();
            foreach (var generation in new[] { record.Newest, record.Previous })
            {
                if (generation is not null)
                {
                    retired.Add(generation.SpiMnToHa.Value);
                    retired.Add(generation.SpiHaToMn.Value);
                    System.Security.Cryptography.CryptographicOperations.ZeroMemory(generation.Secret);
                }
            }
            opened.Store.SaveRetiredSpis(retired);
        }
        opened.Store.Remove(home);
        return $"binding and dynamic keys removed from {path}";
    }
}
