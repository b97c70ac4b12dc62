using System.CommandLine;
using System.Net;
using MipKeyAgent.Cli.Config;
using MipKeyAgent.Cli.Hosting;
using MipKeyAgent.Cli.Qkd;
using MipKeyAgent.Protocol;
using MipKeyAgent.Protocol.HomeAgent;
using MipKeyAgent.Protocol.Keys;
using MipKeyAgent.Store.Postgres;
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
        var store = new Option<string?>("--store")
        {
            Description = $"Binding store so a restart keeps keys and bindings: a SQLite file (default {HomeAgentStores.DefaultPath}) or a shared " +
                "PostgreSQL database, postgresql://USER@HOST/DB or postgresql://USER@/DB?host=/socket/dir, for a hot-standby pair (docs/cluster.md).",
        };
        var passwordFile = new Option<string?>("--store-password-file")
        {
            Description = "With a postgresql:// store: the file (mode 0600) whose first line is the database password. Without it PGPASSWORD " +
                "or ~/.pgpass is used; a password in the URL is refused.",
        };
        var standby = new Option<bool>("--standby")
        {
            Description = "With a postgresql:// store: start as the pair's standby, wait until the active HA's lease expires, then take it, load " +
                "the bindings and answer. Without it a lease held by another HA is an error.",
        };
        var leaseHolder = new Option<string?>("--lease-holder") { Description = "This HA's name in the lease row (default HOST:PID)." };
        var leaseSeconds = new Option<double>("--lease-seconds")
        {
            Description = "How long the active HA's lease lasts without renewal (renewed every third of it): the longest a failover waits.",
            DefaultValueFactory = _ => 10,
        };
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
            Description = "Open a store that is older than its rollback anchor (<master-key dir>/<store name>.anchor), or has none: first raise every " +
                "sequence reservation and generation number to the anchored values. Only after restoring a backup on purpose, or once when the anchor is new.",
        };
        var rollbackAnchor = new Option<bool>("--rollback-anchor")
        {
            Description = "Keep a rollback anchor (<master-key dir>/<store name>.anchor, sealed high-water marks) and refuse a store older than it " +
                "or without it. Once the anchor exists it is checked and kept by every start. Costs a rewrite of the whole anchor, O(bindings), " +
                "at every new generation: for stores of up to a few hundred nodes (docs/store.md).",
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
            "  mipkey ha -c ha.conf -i eth0 --store 'postgresql://mipkey@/mipkey?host=/run/postgresql' --master-key /etc/mipkey/pair.key --standby\n" +
            "  mipkey ha -c ha.conf -i veth-ha --key-source qkd --kme-url https://127.0.0.1:8443 --kme-ca ca.crt --sae-cert sae-SAE_HA.crt \\\n" +
            "      --sae-key sae-SAE_HA.key --slave-sae SAE_MN1 --key-delivery reference\n" +
            "  mipkey ha status");
        command.Options.Add(config);
        transport.AddTo(command);
        dataPlane.AddTo(command);
        foreach (var o in new Option[] { address, store, passwordFile, standby, leaseHolder, leaseSeconds, volatileStore, ikCounters, masterKey, rollbackAnchor, acceptRollback, rekey, implicitMode, metricsPort, socket, logLevel, jsonLogs })
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
            string storePath = parse.GetValue(store) ?? HomeAgentStores.DefaultPath;
            bool postgres = !parse.GetValue(volatileStore) && PostgresUrl.IsPostgres(storePath);
            double leaseLength = parse.GetValue(leaseSeconds);
            if (postgres && !(leaseLength is >= 1 and <= 3600))
            {
                throw new ConfigException("--lease-seconds", 0, null, "the lease lasts between 1 and 3600 seconds");
            }
            if (!postgres && (parse.GetValue(standby) || parse.GetValue(passwordFile) is not null))
            {
                throw new ConfigException(parse.GetValue(standby) ? "--standby" : "--store-password-file", 0, null, "needs a postgresql:// --store");
            }
            var postgresUrl = postgres ? HomeAgentStores.CheckPostgres(storePath, parse.GetValue(passwordFile), parse.GetValue(masterKey)) : null;
            if (!parse.GetValue(volatileStore) && !postgres)
            {
                StartChecks.CreatablePath("--store", storePath);
                StartChecks.CreatablePath("--master-key", parse.GetValue(masterKey));
            }
            using var loggers = CliOptions.Loggers(parse.GetValue(logLevel), parse.GetValue(jsonLogs));
            using var durableBindings = volatileBindings is not null || postgres ? null
                : HomeAgentStores.Open(storePath, parse.GetValue(masterKey),
                    acceptRollback: parse.GetValue(acceptRollback), rollbackAnchor: parse.GetValue(rollbackAnchor));
            using var keeper = postgres
                ? new LeaseKeeper(parse.GetValue(leaseHolder) ?? $"{Environment.MachineName}:{Environment.ProcessId}", TimeSpan.FromSeconds(leaseLength),
                    TimeProvider.System, loggers.CreateLogger("mipkey.ha"))
                : null;
            // An HA of a pair opens its links only once it holds the lease: a standby does not answer on the HA's address.
            await using var soloLink = postgres ? null : transport.Open(parse, haAddress);
            await using var soloHomeLink = postgres ? null : dataPlane.OpenHomeAgent(parse, haAddress, loggers);
            using var stop = CliOptions.StopOnSignals(cancellation, out var signals);
            using (signals)
            {
                HomeAgentHost? running = null;
                await using var status = await StatusServer.StartAsync(() => Status(running, keeper, soloLink?.Name ?? "(standby)"),
                    socketPath, parse.GetValue(metricsPort), loggers, stop.Token).ConfigureAwait(false);
                using var removeSocket = new SocketFile(socketPath);
                OpenedStore? clusterBindings = null;
                try
                {
                    // A standby waits here, with its status endpoint up, until it holds the lease.
                    clusterBindings = keeper is null ? null
                        : HomeAgentStores.OpenPostgres(postgresUrl!, parse.GetValue(masterKey)!, parse.GetValue(standby), keeper, stop.Token);
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    return 0;
                }
                using var ownedClusterBindings = clusterBindings;
                await using var clusterLink = postgres ? transport.Open(parse, haAddress) : null;
                await using var clusterHomeLink = postgres ? dataPlane.OpenHomeAgent(parse, haAddress, loggers) : null;
                var link = soloLink ?? clusterLink!;
                var homeLink = soloHomeLink ?? clusterHomeLink;
                var bindingStore = volatileBindings ?? durableBindings ?? clusterBindings!;
                nodes ??= HomeAgentStores.ServableNodes(bindingStore, file.Nodes, configPath, options.SequenceReservationBlock, out lostNodes);
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
                foreach (var lost in lostNodes)
                {
                    AgentLog.InitializationCountersLost(logger, lost);
                }
                foreach (var bound in status.Addresses)
                {
                    AgentLog.StatusListening(logger, bound);
                }
                using var stopOrFenced = CancellationTokenSource.CreateLinkedTokenSource(stop.Token, keeper?.Lost ?? CancellationToken.None);
                await host.RunAsync(stopOrFenced.Token).ConfigureAwait(false);
                if (keySupply is not null)
                {
                    await keySupply.StopAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
                }
                if (keeper?.LeaseLost == true)
                {
                    // Fenced: another HA is active. A supervisor restarts this one with --standby.
                    return 3;
                }
            }
            return 0;
        });
        return command;
    }

    /// <summary>The running host's status with the pair's (role, lease, database); a standby's before it runs a host.</summary>
    private static async Task<AgentStatus> Status(HomeAgentHost? running, LeaseKeeper? keeper, string transport)
    {
        if (running is null)
        {
            // A standby (or fenced) HA reports its role; one that just took the lease is starting its host.
            return keeper?.Status is { Role: not "active" } waiting
                ? new AgentStatus("ha", DateTimeOffset.UtcNow, 0, transport, new Dictionary<string, long>(), new Dictionary<string, long>(), [], waiting)
                : throw new InvalidOperationException("the home agent is starting");
        }
        var status = await running.GetStatusAsync().ConfigureAwait(false);
        return keeper is null ? status : status with { Cluster = keeper.Status };
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
