using System.Diagnostics.CodeAnalysis;
using MipKeyAgent.Esp;
using MipKeyAgent.Protocol;

namespace MipKeyAgent.Conformance;

/// <summary>
/// What a running case sees: the target's settings, fresh tester nodes (each a node identity no
/// other case uses), the evidence log, and the verdict helpers (<see cref="Fail"/>,
/// <see cref="Check"/>, <see cref="Inconclusive"/>).
/// </summary>
internal sealed class CaseContext : IDisposable
{
    private readonly NodePool _pool;
    private readonly TesterLink _link;
    private readonly List<EvidenceEntry> _evidence = [];
    private readonly List<TesterNode> _nodes = [];
    private readonly List<TesterHomeAgent> _homeAgents = [];
    // Home agents the session owns: reported with this case's SAs, disposed by the session.
    private readonly List<TesterHomeAgent> _sharedHomeAgents = [];
    private readonly Lock _lock = new();

    public CaseContext(TargetSettings settings, NodePool pool, TesterLink link, CancellationToken cancellation)
    {
        Settings = settings;
        _pool = pool;
        _link = link;
        Cancellation = cancellation;
    }

    public TargetSettings Settings { get; }

    /// <summary>The run's knowledge of the target mobile node between cases (mn cases only).</summary>
    public MobileNodeSession? Session { get; init; }

    public CancellationToken Cancellation { get; }

    public IReadOnlyList<EvidenceEntry> Evidence
    {
        get
        {
            lock (_lock)
            {
                return [.. _evidence];
            }
        }
    }

    public IReadOnlyList<SecurityAssociationKeys> SecurityAssociations =>
        [.. _nodes.SelectMany(n => n.SecurityAssociations), .. _homeAgents.Concat(_sharedHomeAgents).SelectMany(h => h.SecurityAssociations)];

    /// <summary>A node identity no other case of the run uses (of the provisioned suite <paramref name="suite"/>, if given).</summary>
    public TesterNode NewNode(Esp.EspSuite? suite = null)
    {
        var (provisioning, name) = _pool.Take(suite) ?? throw new CaseInconclusiveException(
            suite is null ? "no unused provisioned node left for this case (provision more nodes)" : $"no unused provisioned node of suite {(byte)suite} left");
        var node = new TesterNode(this, _link, provisioning, name);
        _nodes.Add(node);
        return node;
    }

    /// <summary>The tester as the home agent of the target mobile node (the first node of <see cref="TargetSettings.Nodes"/>), with no state yet.</summary>
    public TesterHomeAgent NewHomeAgent()
    {
        if (Settings.Nodes.Count == 0)
        {
            throw new CaseInconclusiveException("the target node's provisioning is not known");
        }
        // The previous case's home agent state goes first: its IK counters are then known to the new one.
        Session?.Reset();
        var homeAgent = new TesterHomeAgent(this, _link, Settings.Nodes[0]);
        if (Session is null)
        {
            _homeAgents.Add(homeAgent);
        }
        else
        {
            Session.Begin(homeAgent);
            _sharedHomeAgents.Add(homeAgent);
        }
        return homeAgent;
    }

    /// <summary>Continues with the home agent state a previous case left (<see cref="MobileNodeSession"/>), recording into this case.</summary>
    public void Continue(TesterHomeAgent homeAgent)
    {
        homeAgent.Attach(this);
        _sharedHomeAgents.Add(homeAgent);
    }

    public void Record(EvidenceDirection direction, byte[]? datagram, string text)
    {
        lock (_lock)
        {
            _evidence.Add(new EvidenceEntry(DateTimeOffset.UtcNow, direction, datagram, text));
        }
    }

    public void Note(string text) => Record(EvidenceDirection.Note, null, text);

    [DoesNotReturn]
    public void Fail(string expected, string observed) => throw new CaseFailedException(expected, observed);

    public void Check([DoesNotReturnIf(false)] bool condition, string expected, string observed)
    {
        if (!condition)
        {
            Fail(expected, observed);
        }
    }

    [DoesNotReturn]
    public void Inconclusive(string reason) => throw new CaseInconclusiveException(reason);

    public Task DelayAsync(TimeSpan delay) => Task.Delay(delay, Cancellation);

    public void Dispose()
    {
        foreach (var node in _nodes)
        {
            node.Dispose();
        }
        foreach (var homeAgent in _homeAgents)
        {
            homeAgent.Dispose();
        }
    }
}

/// <summary>The provisioned nodes, handed out once each, in order.</summary>
internal sealed class NodePool(IReadOnlyList<MobileNodeProvisioning> nodes)
{
    private readonly bool[] _taken = new bool[nodes.Count];
    private readonly Lock _lock = new();

    public (MobileNodeProvisioning Provisioning, string Name)? Take(Esp.EspSuite? suite)
    {
        lock (_lock)
        {
            // A case that names no suite takes the default suite first, leaving the others to the cases that need them.
            foreach (var wanted in suite is { } named ? [named] : (Esp.EspSuite?[])[Esp.EspSuite.AesGcm256, null])
            {
                for (int i = 0; i < nodes.Count; i++)
                {
                    if (!_taken[i] && (wanted is null || nodes[i].Suite == wanted))
                    {
                        _taken[i] = true;
                        return (nodes[i], $"node {nodes[i].HomeAddress}");
                    }
                }
            }
            return null;
        }
    }
}
