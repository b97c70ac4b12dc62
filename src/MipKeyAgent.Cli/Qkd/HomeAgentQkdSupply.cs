using MipKeyAgent.Cli.Config;
using MipKeyAgent.Hosting;
using MipKeyAgent.KeySupply;
using MipKeyAgent.KeySupply.Etsi014;
using MipKeyAgent.KeySupply.Sessions;
using MipKeyAgent.Protocol;
using MipKeyAgent.Protocol.Keys;
using MipKeyAgent.Wire;
using Microsoft.Extensions.Logging;

namespace MipKeyAgent.Cli.Qkd;

/// <summary>What <c>mipkey ha --key-source qkd</c> was given.</summary>
/// <param name="Client">The KME and the HA's SAE credentials.</param>
/// <param name="DefaultSlaveSae">The slave SAE of every node without its own (<c>--slave-sae ID</c>), or null.</param>
/// <param name="SlaveSaeByNode">Per node label (<c>--slave-sae NAME=ID</c>).</param>
/// <param name="MasterSaeId">The HA's SAE ID named in key references (<c>--sae-id</c>; default the certificate's CN).</param>
/// <param name="RekeyInterval">Sizes the key-use session (nodes / interval x headroom).</param>
/// <param name="MinimumThroughput">Keys/s asked for with no active node, so first inits find keys.</param>
/// <param name="SeenKeysPath">Where the keys already used are remembered across restarts (beside a SQLite store); null: in memory.</param>
internal sealed record HomeAgentQkdSettings(
    QkdClientSettings Client,
    string? DefaultSlaveSae,
    IReadOnlyDictionary<string, string> SlaveSaeByNode,
    string? MasterSaeId,
    TimeSpan RekeyInterval,
    double MinimumThroughput,
    string? SeenKeysPath = null)
{
    /// <summary>Parses the repeated <c>--slave-sae</c> values: <c>ID</c> (every node) or <c>NAME=ID</c> (one node).</summary>
    public static (string? Default, Dictionary<string, string> ByNode) ParseSlaveSaes(IEnumerable<string> values, IReadOnlyList<ProvisionedNode> nodes)
    {
        string? fallback = null;
        var byNode = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var value in values)
        {
            int eq = value.IndexOf('=', StringComparison.Ordinal);
            if (eq < 0)
            {
                fallback = fallback is null ? value
                    : throw new ConfigException(QkdClientSettings.Source, 0, "--slave-sae", "more than one default slave SAE (use NAME=ID for per-node SAEs)");
                continue;
            }
            var name = value[..eq];
            var id = value[(eq + 1)..];
            if (id.Length == 0 || !nodes.Any(n => n.Name == name))
            {
                throw new ConfigException(QkdClientSettings.Source, 0, "--slave-sae", $"'{value}': no [mobile-node {name}] in the provisioning file, or no SAE ID");
            }
            if (!byNode.TryAdd(name, id))
            {
                throw new ConfigException(QkdClientSettings.Source, 0, "--slave-sae", $"{name} has two slave SAEs");
            }
        }
        foreach (var node in nodes)
        {
            if (fallback is null && !byNode.ContainsKey(node.Name))
            {
                throw new ConfigException(QkdClientSettings.Source, 0, "--slave-sae", $"no slave SAE for {node.Name} (give --slave-sae ID for all nodes or --slave-sae {node.Name}=ID)");
            }
        }
        return (fallback, byNode);
    }
}

/// <summary>
/// The HA's keys from a QKD KME: one <see cref="QkdKeySource"/> per slave SAE (a node is served
/// keys in its own SAE's name) behind a <see cref="QkdKeySourceRouter"/>, and one
/// <see cref="QkdSessionController"/> per slave SAE keeping a key-use session at the HA's node
/// sized to the nodes that hold keys (docs/qkd.md sections 5 and 6). <see cref="Observe"/> gets
/// every HA event; <see cref="StopAsync"/> closes the sessions.
/// </summary>
internal sealed class HomeAgentQkdSupply : IAsyncDisposable
{
    private readonly QkdKeySourceRouter _router = new();
    private readonly Dictionary<string, QkdKeySource> _sources = new(StringComparer.Ordinal);
    private readonly Dictionary<string, QkdSessionController> _sessions = new(StringComparer.Ordinal);
    private readonly List<QkdSessionClient> _sessionClients = [];
    private readonly Dictionary<Ipv6Address, (string Name, string Sae)> _nodes = [];
    private readonly ILogger _logger;
    private readonly KeyReuseGuard _reuse;
    private bool _stopped;

    private HomeAgentQkdSupply(ILogger logger, string masterSaeId, KeyReuseGuard reuse)
    {
        _logger = logger;
        MasterSaeId = masterSaeId;
        _reuse = reuse;
    }

    /// <summary>The engine's key source (an <see cref="IReferencedKeySource"/>).</summary>
    public IReferencedKeySource KeySource => _router;

    /// <summary>The HA's SAE ID, named in key references.</summary>
    public string MasterSaeId { get; }

    /// <summary>Per slave SAE: the prefetch buffer (depth, failures) and session, for status.</summary>
    public IReadOnlyDictionary<string, QkdKeySource> Sources => _sources;

    public IReadOnlyDictionary<string, QkdSessionController> Sessions => _sessions;

    /// <summary>
    /// Checks the certificates, probes the KME once per slave SAE (status), then starts the
    /// prefetch buffers and the sessions. Any problem is a <see cref="ConfigException"/> with one line.
    /// </summary>
    public static async Task<HomeAgentQkdSupply> StartAsync(HomeAgentQkdSettings settings, IReadOnlyList<ProvisionedNode> nodes, TimeProvider time,
        ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(nodes);
        ArgumentNullException.ThrowIfNull(loggers);
        var cn = settings.Client.Validate();
        KeyReuseGuard reuse;
        try
        {
            reuse = settings.SeenKeysPath is { } seen ? KeyReuseGuard.Open(seen) : new KeyReuseGuard();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            throw new ConfigException(settings.SeenKeysPath!, 0, "--store", $"cannot open the QKD seen-keys file: {e.Message}");
        }
        var supply = new HomeAgentQkdSupply(loggers.CreateLogger("mipkey.qkd"), settings.MasterSaeId ?? cn, reuse);
        try
        {
            foreach (var node in nodes)
            {
                var sae = settings.SlaveSaeByNode.TryGetValue(node.Name, out var own) ? own : settings.DefaultSlaveSae!;
                supply._nodes[node.Provisioning.HomeAddress] = (node.Name, sae);
            }
            foreach (var sae in supply._nodes.Values.Select(n => n.Sae).Distinct(StringComparer.Ordinal))
            {
                var client = Etsi014Client.Create(settings.Client.ClientOptions);
                var status = await client.GetStatusAsync(sae, cancellationToken).ConfigureAwait(false);
                if (!status.IsOk)
                {
                    client.Dispose();
                    throw settings.Client.Unreachable(status);
                }
                var s = status.Value!;
                QkdLog.KmeReady(supply._logger, settings.Client.KmeUrl, s.SourceKmeId, s.TargetKmeId, s.MasterSaeId, sae, s.StoredKeyCount, s.MaxKeyPerRequest);
                var prefetch = new KeyPrefetchOptions
                {
                    MaxPerRequest = Math.Clamp(s.MaxKeyPerRequest, 1, 128),
                    Rejected = (reason, count) => QkdLog.KeysRejected(supply._logger, settings.Client.KmeUrl, sae, count, reason, RejectionText(reason)),
                };
                supply._sources[sae] = QkdKeySource.Start(client, sae, prefetch, time, supply.MasterSaeId, supply._reuse);
                var sessions = QkdSessionClient.Create(settings.Client.ClientOptions);
                supply._sessionClients.Add(sessions);
                var controller = new QkdSessionController(sessions, new QkdSessionControllerOptions
                {
                    PeerSaeId = sae,
                    RekeyInterval = settings.RekeyInterval,
                    MinimumThroughput = settings.MinimumThroughput,
                    SessionsUnsupported = answer => QkdLog.SessionsUnsupported(supply._logger, settings.Client.KmeUrl, sae, answer),
                }, time);
                supply._sessions[sae] = controller;
                controller.Start();
            }
            foreach (var (home, node) in supply._nodes)
            {
                supply._router.Add(home, new SharedSource(supply._sources[node.Sae]));
            }
            return supply;
        }
        catch
        {
            await supply.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static string RejectionText(string reason) => reason switch
    {
        "reused" => "its key_ID or its bytes were served before: the KME is faulty, and a key is never used for two generations",
        "wrong_size" => "not the 256 bits asked for",
        "bad_key_id" => "the key_ID is not a UUID, so a key reference cannot name it",
        _ => reason,
    };

    /// <summary>Counters for status and /metrics, summed over the slave SAEs: keys requested, received,
    /// handed to the engine, rejected (by reason), wasted; failed fetches.</summary>
    public IReadOnlyDictionary<string, long> Counters()
    {
        var sums = new SortedDictionary<string, long>(StringComparer.Ordinal)
        {
            ["qkd_keys_requested"] = 0, ["qkd_keys_received"] = 0, ["qkd_keys_taken"] = 0, ["qkd_keys_wasted"] = 0, ["qkd_keys_late"] = 0, ["qkd_fetch_failures"] = 0,
            ["qkd_keys_rejected_reused"] = 0, ["qkd_keys_rejected_wrong_size"] = 0, ["qkd_keys_rejected_bad_key_id"] = 0,
        };
        foreach (var source in _sources.Values)
        {
            var c = source.Buffer.Counters;
            sums["qkd_keys_requested"] += c.Requested;
            sums["qkd_keys_received"] += c.Received;
            sums["qkd_keys_taken"] += c.Taken;
            sums["qkd_keys_wasted"] += c.Wasted;
            sums["qkd_keys_late"] += c.Late;
            sums["qkd_fetch_failures"] += c.FetchFailures;
            foreach (var (reason, count) in c.Rejected)
            {
                sums["qkd_keys_rejected_" + reason] = sums.GetValueOrDefault("qkd_keys_rejected_" + reason) + count;
            }
        }
        return sums;
    }

    /// <summary>
    /// Every HA event: keeps the key-use session of the node's SAE sized to its active nodes, and
    /// logs why keys were unavailable when the HA answered KEY-STATUS 1.
    /// </summary>
    public void Observe(ProtocolEvent e)
    {
        if (!_nodes.TryGetValue(e.HomeAddress, out var node))
        {
            return;
        }
        if (_sessions.TryGetValue(node.Sae, out var controller))
        {
            controller.Observe(e);
        }
        if (e.Kind == ProtocolEventKind.KeyStatus && _sources.TryGetValue(node.Sae, out var source))
        {
            var buffer = source.Buffer;
            QkdLog.KeysUnavailable(_logger, node.Name, node.Sae, buffer.LastResult?.ToString() ?? "no answer yet", buffer.ConsecutiveFailures,
                buffer.CurrentBackoff.TotalSeconds);
        }
        else if (e.Kind == ProtocolEventKind.KeyFallback)
        {
            QkdLog.LocalFallback(_logger, node.Name, node.Sae, e.Generation.Value);
        }
    }

    /// <summary>Closes the key-use sessions (DELETE), each within <paramref name="timeout"/>.</summary>
    public async Task StopAsync(TimeSpan timeout)
    {
        if (_stopped)
        {
            return;
        }
        _stopped = true;
        foreach (var (sae, controller) in _sessions)
        {
            using var limit = new CancellationTokenSource(timeout);
            try
            {
                await controller.StopAsync(limit.Token).ConfigureAwait(false);
                QkdLog.SessionClosed(_logger, sae, controller.LastFailure ?? "ok");
            }
            catch (OperationCanceledException)
            {
                QkdLog.SessionClosed(_logger, sae, "timed out");
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        foreach (var controller in _sessions.Values)
        {
            await controller.DisposeAsync().ConfigureAwait(false);
        }
        foreach (var client in _sessionClients)
        {
            client.Dispose();
        }
        _router.Dispose();
        foreach (var source in _sources.Values)
        {
            source.Dispose();
        }
        _reuse.Dispose();
    }

    /// <summary>Routes a node to a source shared with other nodes of the same SAE (the router would otherwise dispose it per node).</summary>
    private sealed class SharedSource(QkdKeySource source) : IReferencedKeySource
    {
        public KeySourceResult TryNextSecret(Span<byte> destination32) => source.TryNextSecret(destination32);

        public KeySourceResult TryNextSecret(Ipv6Address homeAddress, Span<byte> destination32, out KeyReference reference) =>
            source.TryNextSecret(homeAddress, destination32, out reference);
    }
}

internal static partial class QkdLog
{
    [LoggerMessage(EventId = 300, Level = LogLevel.Information,
        Message = "QKD key source: KME {Url} ({SourceKme} paired with {TargetKme}) serves {MasterSae} keys for slave SAE {SlaveSae}; {Stored} stored, {MaxPerRequest} per request")]
    public static partial void KmeReady(ILogger logger, Uri url, string sourceKme, string targetKme, string masterSae, string slaveSae, int stored, int maxPerRequest);

    [LoggerMessage(EventId = 301, Level = LogLevel.Warning,
        Message = "no QKD key for {Node} (slave SAE {SlaveSae}): KEY-STATUS 1 sent; the KME last answered {Result}, {Failures} failures in a row, next try in {BackoffSeconds} s")]
    public static partial void KeysUnavailable(ILogger logger, string node, string slaveSae, string result, int failures, double backoffSeconds);

    [LoggerMessage(EventId = 302, Level = LogLevel.Warning,
        Message = "no QKD key for {Node} (slave SAE {SlaveSae}): generation {Generation} uses a LOCAL key (--fallback-local)")]
    public static partial void LocalFallback(ILogger logger, string node, string slaveSae, uint generation);

    [LoggerMessage(EventId = 306, Level = LogLevel.Warning,
        Message = "KME {Url} served {Count} unusable keys for slave SAE {SlaveSae} ({Reason}: {Why}); refused, next fetch after a backoff")]
    public static partial void KeysRejected(ILogger logger, Uri url, string slaveSae, int count, string reason, string why);

    [LoggerMessage(EventId = 307, Level = LogLevel.Information,
        Message = "KME {Url} has no key-use sessions API ({Answer}); no session is kept for slave SAE {SlaveSae} and none is asked for again")]
    public static partial void SessionsUnsupported(ILogger logger, Uri url, string slaveSae, string answer);

    [LoggerMessage(EventId = 303, Level = LogLevel.Information, Message = "key-use session toward {SlaveSae} closed: {Outcome}")]
    public static partial void SessionClosed(ILogger logger, string slaveSae, string outcome);

    [LoggerMessage(EventId = 305, Level = LogLevel.Information, Message = "QKD key resolver: KME {Url}, this SAE {Sae}, keys accepted from master SAE {MasterSae}")]
    public static partial void ResolverReady(ILogger logger, Uri url, string sae, string masterSae);
}
