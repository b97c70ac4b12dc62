using System.CommandLine;
using MipKeyAgent.Cli.Config;
using MipKeyAgent.Hosting;
using Spectre.Console;

namespace MipKeyAgent.Cli.Commands;

/// <summary><c>mipkey keys show</c>: generations, SPIs, confirmation and ages per binding, never key bytes.</summary>
internal static class KeysCommand
{
    public static Command Create(Func<IAnsiConsole> console)
    {
        var socket = new Option<string?>("--status-socket") { Description = $"Ask a running HA on this Unix socket (the default, {HaCommand.DefaultSocket}, when no --store is given)." };
        var port = new Option<int?>("--metrics-port") { Description = "Ask a running HA on 127.0.0.1:PORT." };
        var store = new Option<string?>("--store") { Description = "Read the HA's binding store (SQLite file) instead; the HA need not run. Needs --config." };
        var config = new Option<FileInfo?>("--config", "-c") { Description = "The HA's provisioning file (names the nodes and their IK SPIs) when reading --store." };
        var masterKey = new Option<string?>("--master-key") { Description = "The store's master key file (default <store>.key)." };
        var show = new Command("show",
            "Prints each binding's key generations (newest, previous, IK), their SPIs in both directions, whether the newest is confirmed, " +
            "which one the HA transmits with, and their ages. Key bytes are never shown.\n\n" +
            "Examples:\n" +
            "  mipkey keys show\n" +
            "  mipkey keys show --metrics-port 9464\n" +
            "  mipkey keys show --store mipkey-ha.db --config ha.conf")
        {
            socket, port, store, config, masterKey,
        };
        show.SetAction(async (parse, cancellation) =>
        {
            IReadOnlyList<BindingStatus> bindings;
            if (parse.GetValue(store) is { } storePath)
            {
                var file = parse.GetValue(config) ?? throw new ConfigException(storePath, 0, "--config", "reading a store needs the HA's provisioning file (--config)");
                StartChecks.ReadableFile("--config", file.FullName);
                StartChecks.ReadableFile("--store", storePath);
                var provisioning = HomeAgentConfig.Load(file.FullName);
                using var opened = HomeAgentStores.Open(storePath, parse.GetValue(masterKey), createIfMissing: false);
                var now = DateTimeOffset.UtcNow;
                bindings = [.. provisioning.Nodes.Select(n => StatusSnapshot.FromRecord(n.Name, n.Provisioning, opened.Store.Load(n.Provisioning.HomeAddress), now))];
            }
            else
            {
                var status = await StatusClient.GetAsync(parse.GetValue(port) is null ? parse.GetValue(socket) ?? HaCommand.DefaultSocket : null,
                    parse.GetValue(port), cancellation).ConfigureAwait(false);
                bindings = status.Bindings;
            }
            StatusTables.WriteBindings(console(), bindings);
            return 0;
        });
        return new Command("keys", "Inspects the home agent's keys (numbers and SPIs only).") { show, MasterKeyCommand(console) };
    }

    /// <summary><c>mipkey keys master-key FILE</c>: a new store master key, e.g. the one every HA of a PostgreSQL pair shares.</summary>
    private static Command MasterKeyCommand(Func<IAnsiConsole> console)
    {
        var file = new Argument<string>("FILE") { Description = "The key file to create (mode 0600); an existing file is never overwritten." };
        var command = new Command("master-key",
            "Creates a store master key: 32 random octets, hex, in a new file readable only by its owner. Every HA of a pair on a shared " +
            "PostgreSQL store (docs/cluster.md) is started with the same one (--master-key).\n\n" +
            "Examples:\n" +
            "  mipkey keys master-key /etc/mipkey/pair.key")
        {
            file,
        };
        command.SetAction(parse =>
        {
            string path = parse.GetRequiredValue(file);
            MipKeyAgent.Store.MasterKey.Create(path);
            console().WriteLine($"{path}: new master key (mode 0600)");
            return 0;
        });
        return command;
    }
}
