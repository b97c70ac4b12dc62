using System.CommandLine;
using System.Net;
using MipKeyAgent.Cli.Config;
using MipKeyAgent.Cli.Hosting;
using MipKeyAgent.Cli.Qkd;
using MipKeyAgent.Protocol;
using MipKeyAgent.Protocol.HomeAgent;
using MipKeyAgent.Protocol.Keys;
using MipKeyAgent.Wire;
using Spectre.Console;

namespace MipKeyAgent.Cli.Commands;

/// <summary><c>mipkey ha</c>: the home agent process, and <c>mipkey ha status</c>.</summary>
internal static class HaCommand
{
    public const string DefaultSocket = "mipkey-ha.sock";

    public static Command Create(Func<IAnsiConsole> console)
    {
        var config = new Option<FileInfo>("--config", "-c") { Description = "Provisioning file: [home-agent] settings and one [mobile-node NAME] per node (see docs/examples/ha.conf).", Required = true };
        var address = new Option<string?>("--address") { Description = "The HA's IPv6 address (overrides address in [home-agent])." };
        var store = new Option<string?>("--store") { Description = $"Binding store (SQLite file) so a restart keeps keys and bindings. Default {HomeAgentStores.DefaultPath}." };
        var volatileStore = new Option<bool>("--volatile") { Description = "Keep bindings in memory only: a restart loses them and every node re-initializes. " +
            "The initialization keys' ESP counter reservations still outlive the process, in --ik-counters." };
        var ikCounters = new Option<string?>("--ik-counters")
        {
            Description = "With --volatile: the file (mode 0600) that keeps the initialization keys' ESP counter reservations, so a restart never " +
                "repeats a (key, counter) pair (PROTOCOL.md section 8.1). Default: <config>.ik-counters. <config>.ik-used lists the keys already " +
                "sent under; a node whose key is listed there without a reservation is not served until 'mipkey provision rotate-ik'.",
        };
        var masterKey = new Option<string?>("--master-key") { Description = "File with the 32-octet key that encrypts secrets in the store (mode 0600). Default: <store>.key, created on first use." };
        var acceptRollback = new Option<bool>("--accept-store-rollback")
        {
            Description = "Open a store that is older than its rollback anchor (<master-key dir>/<store name>.anchor), or whose anchor went missing: " +
                "first raise every sequence reservation and generation number to the anchored values. Only after restoring a backup on purpose.",
        };
        var noRollbackAnchor = new Option<bool>("--no-rollback-anchor")
        {
            Description = "Keep no rollback anchor. By default the store keeps one (<master-key dir>/<store name>.anchor, an append-only sealed log " +
                "of its high-water marks) and refuses a database older than it; this is for a master key directory the HA cannot write, and " +
                "for benchmarks. An anchor left from earlier starts is neither read nor written (docs/store.md).",
        };
        var rekey = CliOptions.OptionalDuration("--rekey-interval", "The HA's per-node rekey timer (overrides rekey-interval in the file).");
        var implicitMode = new Option<bool>("--implicit") { Description = "Implicit mode (no request options; the SPI alone drives the exchange)." };
        var metricsPort = new Option<int?>("--metrics-port") { Description = "Also serve /metrics (Prometheus text) and /status on 127.0.0.1:PORT." };
        var socket = new Option<string>("--status-socket") { Description = "Unix socket of the status endpoint read by 'mipkey ha status' and 'mipkey keys show'.", DefaultValueFactory = _ => DefaultSocket };
        var transport = new TransportOptions();
        var dataPlane = DataPlaneOptions.ForHomeAgent();
        var qkd = new HomeAgentQkdOptions();
        var logLevel = CliOptions.LogLevelOption();
        var jsonLogs = CliOptions.JsonLogsOption();

        var command = new Command("ha",
            "Runs the home agent: receives ESP-protected Binding Updates, answers with Binding Acknowledgements carrying new keys, keeps two key " +
            "generations per node, rekeys on its own timer, and answers tunnelled pings to its address. Logs every key event; stops cleanly on " +
            "SIGINT/SIGTERM (capture flushed, store closed).\n\n" +
            "Examples:\n" +
            "  mipkey ha --config ha.conf --interface veth-ha --capture ha.pcap\n" +
            "  mipkey ha -c ha.conf --transport tap -i mk0 --address 2001:db8:1::1 --rekey-interval 10m --metrics-port 9464\n" +
            "  mipkey ha -c ha.conf -i eth0 --volatile --log-json\n" +
            "  mipkey ha -c ha.conf -i eth0 --home-link eth0 --store ha.db       (tunnel the nodes' traffic, docs/dataplane.md)\n" +
            "  mipkey ha -c ha.conf -i veth-ha --key-source qkd --kme-url https://127.0.0.1:8443 --kme-ca ca.crt --sae-cert sae-SAE_HA.crt \\\n" +
            "      --sae-key sae-SAE_HA.key --slave-sae SAE_MN1 --key-delivery reference\n" +
            "  mipkey ha status");
        command.Options.Add(config);
        transport.AddTo(command);
        dataPlane.AddTo(command);
        foreach (var o in new Option[] { address, store, volatileStore, ikCounters, masterKey, noRollbackAnchor, acceptRollback, rekey, implicitMode, metricsPort, socket, logLevel, jsonLogs })
        {
            command.Options.Add(o);
        }
        qkd.AddTo(command);
        command.Subcommands.Add(StatusCommand(console));
        command.SetAction(async (parse, cancellation) =>
        {
            var file = HomeAgentConfig.Load(parse.GetRequiredValue(config).FullName);
            var haAddress = parse.GetValue(address) is { } a
                ? Ipv6Address.FromIPAddress(IPAddress.TryParse(a, out var parsed) ? parsed : throw new ConfigException("--address", 0, null, $"'{a}' is not an IPv6 address"))
                : file.Address ?? throw new ConfigException(file.File, 0, "address", "the HA's address is neither in [home-agent] nor given with --address");
            var options = new HomeAgentOptions
            {
                Address = haAddress,
                VendorId = file.VendorId,
                Mode = parse.GetValue(implicitMode) ? KeyExchangeMode.Implicit : file.Mode,
                RekeyInterval = parse.GetValue(rekey) ?? file.RekeyInterval,
                MaxBindingLifetime = file.MaxBindingLifetime,
                SendBindingRefreshRequest = file.SendBindingRefreshRequest,
                KeyDelivery = qkd.Delivery(parse),
                FallbackKeySource = parse.GetValue(qkd.FallbackLocal) ? new LocalRandomKeySource() : null,
            };
            // Every mistake of the command line and the host is found before a key is drawn or a KME
            // session opened: files and options first, then what is opened locally (store, transport,
            // status endpoint); the KME comes last.
            var qkdSettings = qkd.Settings(parse, file, options.RekeyInterval);
            qkdSettings?.Client.Validate();
            // A volatile agent's IK counter reservations are files beside its provisioning: read with the
            // other files, so a node whose counters are lost is named before anything else is checked.
            var configPath = parse.GetRequiredValue(config).FullName;
            using var volatileBindings = parse.GetValue(volatileStore) ? HomeAgentStores.Volatile(configPath, parse.GetValue(ikCounters), file.Nodes) : null;
            IReadOnlyList<string> lostNodes = [];
            var nodes = volatileBindings is null ? null
                : HomeAgentStores.ServableNodes(volatileBindings, file.Nodes, configPath, options.SequenceReservationBlock, out lostNodes);
            transport.Check(parse);
            dataPlane.Check(parse);
            var socketPath = Path.GetFullPath(parse.GetValue(socket) ?? DefaultSocket);
            StartChecks.CreatablePath("--status-socket", socketPath);
            StartChecks.FreeLoopbackPort("--metrics-port", parse.GetValue(metricsPort));
            if (!parse.GetValue(volatileStore))
            {
                StartChecks.CreatablePath("--store", parse.GetValue(store) ?? HomeAgentStores.DefaultPath);
                StartChecks.CreatablePath("--master-key", parse.GetValue(masterKey));
            }
            using var loggers = CliOptions.Loggers(parse.GetValue(logLevel), parse.GetValue(jsonLogs));
            using var durableBindings = volatileBindings is not null ? null
                : HomeAgentStores.Open(parse.GetValue(store) ?? HomeAgentStores.DefaultPath, parse.GetValue(masterKey),
                    acceptRollback: parse.GetValue(acceptRollback), rollbackAnchor: !parse.GetValue(noRollbackAnchor));
            var bindingStore = volatileBindings ?? durableBindings!;
            nodes ??= HomeAgentStores.ServableNodes(bindingStore, file.Nodes, configPath, options.SequenceReservationBlock, out lostNodes);
            await using var link = transport.Open(parse, haAddress);
            await using var homeLink = dataPlane.OpenHomeAgent(parse, haAddress, loggers);
            using var stop = CliOptions.StopOnSignals(cancellation, out var signals);
            using (signals)
            {
                HomeAgentHost? running = null;
                await using var status = await StatusServer.StartAsync(
                    () => running?.GetStatusAsync() ?? Task.FromException<AgentStatus>(new InvalidOperationException("the home agent is starting")),
                    socketPath, parse.GetValue(metricsPort), loggers, stop.Token).ConfigureAwait(false);
                using var removeSocket = new SocketFile(socketPath);
                // The KME is checked once everything local is open, so an unreachable KME is one line at start.
                await using var keySupply = qkdSettings is null ? null
                    : await HomeAgentQkdSupply.StartAsync(qkdSettings, file.Nodes, TimeProvider.System, loggers, cancellation).ConfigureAwait(false);
                using var host = new HomeAgentHost(new HomeAgentHostSettings(options, nodes, bindingStore.Store,
                        keySupply?.KeySource ?? (IKeySource)new LocalRandomKeySource(), new RandomSpiSource(), Events: keySupply is null ? null : keySupply.Observe),
                    link, TimeProvider.System, loggers, homeLink);
                running = host;
                var logger = loggers.CreateLogger("mipkey.ha");
                if (bindingStore.CounterFile is { } counterFile)
                {
                    AgentLog.VolatileStore(logger, counterFile);
                }
                if (bindingStore.AnchorNotice is { } anchorNotice)
                {
                    AgentLog.StoreAnchorNotice(logger, anchorNotice);
                }
                foreach (var lost in lostNodes)
                {
                    AgentLog.InitializationCountersLost(logger, lost);
                }
                foreach (var bound in status.Addresses)
                {
                    AgentLog.StatusListening(logger, bound);
                }
                await host.RunAsync(stop.Token).ConfigureAwait(false);
                if (keySupply is not null)
                {
                    await keySupply.StopAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
                }
            }
            return 0;
        });
        return command;
    }

    private static Command StatusCommand(Func<IAnsiConsole> console)
    {
        var socket = new Option<string>("--status-socket") { Description = "Unix socket of the running HA.", DefaultValueFactory = _ => DefaultSocket };
        var port = new Option<int?>("--metrics-port") { Description = "Read 127.0.0.1:PORT instead of the socket." };
        var json = new Option<bool>("--json") { Description = "Print the raw JSON status." };
        var command = new Command("status",
            "Shows a running home agent's counters (key exchanges, resends, drops by reason) and its bindings.\n\n" +
            "Examples:\n" +
            "  mipkey ha status\n" +
            "  mipkey ha status --status-socket /run/mipkey/ha.sock\n" +
            "  mipkey ha status --metrics-port 9464 --json")
        {
            socket, port, json,
        };
        command.SetAction(async (parse, cancellation) =>
        {
            var status = await StatusClient.GetAsync(parse.GetValue(port) is null ? parse.GetValue(socket) : null, parse.GetValue(port), cancellation)
                .ConfigureAwait(false);
            var output = console();
            if (parse.GetValue(json))
            {
                output.WriteLine(System.Text.Json.JsonSerializer.Serialize(status, StatusServer.Json));
                return 0;
            }
            StatusTables.WriteCounters(output, status);
            StatusTables.WriteBindings(output, status.Bindings);
            return 0;
        });
        return command;
    }

    /// <summary>Removes the status socket when the agent stops, also when it stops at start (an unreachable KME).</summary>
    private sealed class SocketFile(string path) : IDisposable
    {
        public void Dispose() => TryDelete(path);
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
    }
}
