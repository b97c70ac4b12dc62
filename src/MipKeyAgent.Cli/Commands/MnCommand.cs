using System.CommandLine;
using MipKeyAgent.Cli.Config;
using MipKeyAgent.Cli.Hosting;
using MipKeyAgent.Cli.Qkd;
using MipKeyAgent.KeySupply;
using MipKeyAgent.Protocol.MobileNode;
using MipKeyAgent.Protocol.Keys;

namespace MipKeyAgent.Cli.Commands;

/// <summary><c>mipkey mn</c>: the mobile node agent.</summary>
internal static class MnCommand
{
    public static Command Create()
    {
        var config = new Option<FileInfo>("--config", "-c") { Description = "Mobile node file: one [mobile-node] section (see docs/examples/mn1.conf).", Required = true };
        var store = new Option<string?>("--store") { Description = $"State store (SQLite file): Init Epoch, sequence numbers and keys, so a restart continues under the current keys without re-initializing. Default {MobileNodeStores.DefaultPath}." };
        var volatileStore = new Option<bool>("--volatile") { Description = "Keep keys in memory only (labs): every start is a new initialization. " +
            "The Init Epoch, BU sequence number and the initialization key's ESP counter reservation still outlive the process, in --ik-counters." };
        var ikCounters = new Option<string?>("--ik-counters")
        {
            Description = "With --volatile: the file (mode 0600) that keeps the Init Epoch, BU sequence number and the initialization key's ESP " +
                "counter reservation (PROTOCOL.md sections 6 and 8.1). Default: <config>.ik-counters. <config>.ik-used records that the key was " +
                "sent under; with it and no reservation the node refuses to start until the key is re-provisioned ('mipkey provision rotate-ik').",
        };
        var masterKey = new Option<string?>("--master-key") { Description = "File with the 32-octet key that encrypts secrets in the store (mode 0600). Default: <store>.key, created on first use." };
        var acceptRollback = new Option<bool>("--accept-store-rollback")
        {
            Description = "Open a store that is older than its rollback anchor (<master-key dir>/<store name>.anchor), or whose anchor went missing: " +
                "raise the Init Epoch and the initialization key's reservation to the anchored values and drop the stored keys (the node " +
                "re-initializes). Only after restoring a backup on purpose.",
        };
        var noRollbackAnchor = new Option<bool>("--no-rollback-anchor")
        {
            Description = "Keep no rollback anchor (by default an append-only sealed log of the store's high-water marks beside the master key, " +
                "which refuses an older copy of the store): for a master key directory the node cannot write.",
        };
        var ping = CliOptions.OptionalDuration("--ping-interval", "Send an ICMPv6 echo request to the HA through the tunnel this often (the HA answers), so labs can count data packets.");
        var pingSize = new Option<int>("--ping-size") { Description = "Echo data octets per ping.", DefaultValueFactory = _ => 56 };
        var rekey = CliOptions.OptionalDuration("--rekey-interval", "The MN's own rekey timer (overrides rekey-interval in the file).");
        var socket = new Option<string?>("--status-socket") { Description = "Serve /status and /metrics on this Unix socket." };
        var metricsPort = new Option<int?>("--metrics-port") { Description = "Serve /metrics (Prometheus text) and /status on 127.0.0.1:PORT." };
        var transport = new TransportOptions();
        var dataPlane = DataPlaneOptions.ForMobileNode();
        var qkd = new MobileNodeQkdOptions();
        var logLevel = CliOptions.LogLevelOption();
        var jsonLogs = CliOptions.JsonLogsOption();
        var command = new Command("mn",
            "Runs a mobile node agent: registers with its home agent (KEY-INIT-REQ under the initialization key), installs each generation " +
            "from KEY-DIST, asks for updates on its timer, retransmits and re-initializes as PROTOCOL.md section 6 says. Stops on SIGINT/SIGTERM.\n\n" +
            "Examples:\n" +
            "  mipkey mn --config mn1.conf --interface veth-mn1\n" +
            "  mipkey mn -c mn1.conf --transport tap -i mk1 --router 2001:db8:100::ff --ping-interval 1s --capture mn1.pcap\n" +
            "  mipkey mn -c mn1.conf -i eth0 --store /var/lib/mipkey/mn1.db --rekey-interval 2m --metrics-port 9465\n" +
            "  mipkey mn -c mn1.conf -i veth-mn1 --volatile          (lab: no state kept, every start initializes)\n" +
            "  mipkey mn -c mn1.conf -i eth0 --tun mipkey0          (programs reach everything from the home address, docs/dataplane.md)\n" +
            "  mipkey mn -c mn1.conf -i veth-mn1 --kme-url https://127.0.0.1:8444 --kme-ca ca.crt --sae-cert sae-SAE_MN1.crt \\\n" +
            "      --sae-key sae-SAE_MN1.key --master-sae SAE_HA       (key-reference delivery: keys fetched from the MN's KME)");
        command.Options.Add(config);
        transport.AddTo(command);
        dataPlane.AddTo(command);
        foreach (var o in new Option[] { store, volatileStore, ikCounters, masterKey, noRollbackAnchor, acceptRollback, ping, pingSize, rekey, socket, metricsPort, logLevel, jsonLogs })
        {
            command.Options.Add(o);
        }
        qkd.AddTo(command);
        command.SetAction(async (parse, cancellation) =>
        {
            var file = MobileNodeConfig.Load(parse.GetRequiredValue(config).FullName);
            var options = file.ToOptions(parse.GetValue(rekey));
            // Every mistake of the command line and the host is found before anything is opened; the KME comes last.
            var qkdSettings = qkd.Settings(parse);
            qkdSettings?.Client.Validate();
            // A volatile node's IK counters and epoch are files beside its configuration: read with the
            // other files, so lost counters are named before anything else is checked.
            var name = Path.GetFileNameWithoutExtension(file.File);
            using var volatileState = parse.GetValue(volatileStore) ? MobileNodeStores.Volatile(file.File, parse.GetValue(ikCounters), name, file) : null;
            transport.Check(parse);
            dataPlane.Check(parse);
            var socketPath = parse.GetValue(socket) is { } s ? Path.GetFullPath(s) : null;
            StartChecks.CreatablePath("--status-socket", socketPath);
            StartChecks.FreeLoopbackPort("--metrics-port", parse.GetValue(metricsPort));
            if (!parse.GetValue(volatileStore))
            {
                StartChecks.CreatablePath("--store", parse.GetValue(store) ?? MobileNodeStores.DefaultPath);
                StartChecks.CreatablePath("--master-key", parse.GetValue(masterKey));
            }
            using var loggers = CliOptions.Loggers(parse.GetValue(logLevel), parse.GetValue(jsonLogs));
            using var durableState = volatileState is not null ? null
                : MobileNodeStores.Open(parse.GetValue(store) ?? MobileNodeStores.DefaultPath, parse.GetValue(masterKey),
                    parse.GetValue(acceptRollback), !parse.GetValue(noRollbackAnchor));
            var stateStore = volatileState ?? durableState!;
            await using var link = transport.Open(parse, file.CareOfAddress);
            await using var tun = dataPlane.CreateMobileNode(parse, loggers);
            using var stop = CliOptions.StopOnSignals(cancellation, out var signals);
            using (signals)
            {
                MobileNodeHost? running = null;
                StatusServer? status = null;
                if (socketPath is not null || parse.GetValue(metricsPort) is not null)
                {
                    status = await StatusServer.StartAsync(
                        () => running?.GetStatusAsync() ?? Task.FromException<AgentStatus>(new InvalidOperationException("the mobile node is starting")),
                        socketPath, parse.GetValue(metricsPort), loggers, stop.Token).ConfigureAwait(false);
                }
                try
                {
                    // The KME is checked once everything local is open: a bad certificate or unreachable KME is one line at start.
                    Func<Action<KeyFetchCompletion>, IKeyReferenceResolver>? resolver = null;
                    if (qkdSettings is { } q)
                    {
                        var pending = new ForwardingSink();
                        var fetcher = await MobileNodeQkdResolver.StartAsync(q.Client, q.MasterSae, pending.Complete, loggers, cancellation)
                            .ConfigureAwait(false);
                        resolver = complete =>
                        {
                            pending.Target = complete;
                            return fetcher;
                        };
                    }
                    using var host = new MobileNodeHost(new MobileNodeHostSettings(name, options, stateStore.Store,
                        new LocalRandomKeySource(), parse.GetValue(ping), parse.GetValue(pingSize), resolver), link, TimeProvider.System, loggers, tun);
                    running = host;
                    if (durableState?.AnchorNotice is { } anchorNotice)
                    {
                        AgentLog.StoreAnchorNotice(loggers.CreateLogger("mipkey.mn"), anchorNotice);
                    }
                    await host.RunAsync(stop.Token).ConfigureAwait(false);
                }
                finally
                {
                    if (status is not null)
                    {
                        await status.DisposeAsync().ConfigureAwait(false);
                    }
                }
            }
            return 0;
        });
        return command;
    }

    /// <summary>The fetcher is built (and the KME checked) before the host that applies its completions exists.</summary>
    private sealed class ForwardingSink
    {
        public Action<KeyFetchCompletion>? Target { get; set; }

        public void Complete(KeyFetchCompletion completion)
        {
            if (Target is { } target)
            {
                target(completion);
            }
            else
            {
                completion.Dispose();
            }
        }
    }
}
