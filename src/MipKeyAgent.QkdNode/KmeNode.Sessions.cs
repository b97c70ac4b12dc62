namespace MipKeyAgent.QkdNode;

/// <summary>Key-use sessions (not part of ETSI 014) and the inter-KME link that relays keys and mirrors sessions.</summary>
internal sealed partial class KmeNode
{
    // ---- key-use sessions (design source FIG. 6, 8, 10; not part of ETSI 014) ----

    public async Task OpenSessionAsync(HttpContext ctx)
    {
        if (LocalSae(ctx) is not { } caller)
        {
            await UnauthorizedAsync(ctx).ConfigureAwait(false);
            return;
        }
        var request = await ReadAsync(ctx, NodeJsonContext.Default.SessionRequest).ConfigureAwait(false);
        if (request?.PeerSaeId is not { } peerSae || !_kmeOfSae.TryGetValue(peerSae, out var peerKme))
        {
            await ErrorAsync(ctx, 400, "a session needs peer_SAE_ID naming an SAE of this KME or its paired KME").ConfigureAwait(false);
            return;
        }
        if (request.Throughput is not { } throughput || !double.IsFinite(throughput) || throughput < 0)
        {
            await ErrorAsync(ctx, 400, "throughput (keys per second) shall be a non-negative number").ConfigureAwait(false);
            return;
        }
        var sessionId = Guid.NewGuid();
        if (!await RelayAsync(ctx, sessionId, caller, peerSae, peerKme, throughput, "starting").ConfigureAwait(false))
        {
            return;
        }
        var session = Sessions.Open(caller, peerSae, peerKme, throughput, sessionId);
        await WriteAsync(ctx, 201, SessionView.Of(session), NodeJsonContext.Default.SessionView).ConfigureAwait(false);
    }

    public Task ListSessionsAsync(HttpContext ctx)
    {
        if (LocalSae(ctx) is not { } caller)
        {
            return UnauthorizedAsync(ctx);
        }
        var list = new SessionList { Sessions = [.. Sessions.All().Where(s => s.ApplicationId == caller).Select(SessionView.Of)] };
        return WriteAsync(ctx, 200, list, NodeJsonContext.Default.SessionList);
    }

    /// <summary><c>GET /api/v1/sessions/{id}</c>: one of the caller's sessions.</summary>
    public Task GetSessionAsync(HttpContext ctx) =>
        OwnSession(ctx) is { } session ? WriteAsync(ctx, 200, SessionView.Of(session), NodeJsonContext.Default.SessionView) : NotOwnSessionAsync(ctx);

    public async Task ChangeSessionAsync(HttpContext ctx)
    {
        if (OwnSession(ctx) is not { } session)
        {
            await NotOwnSessionAsync(ctx).ConfigureAwait(false);
            return;
        }
        var request = await ReadAsync(ctx, NodeJsonContext.Default.SessionRequest).ConfigureAwait(false);
        if (request?.Throughput is not { } throughput || !double.IsFinite(throughput) || throughput < 0)
        {
            await ErrorAsync(ctx, 400, "throughput (keys per second) shall be a non-negative number").ConfigureAwait(false);
            return;
        }
        if (!await RelayAsync(ctx, session.SessionId, session.ApplicationId, session.PeerApplicationId, session.PeerKmeId, throughput, "connected").ConfigureAwait(false))
        {
            return;
        }
        var changed = Sessions.ChangeThroughput(session.SessionId, throughput)!;
        await WriteAsync(ctx, 200, SessionView.Of(changed), NodeJsonContext.Default.SessionView).ConfigureAwait(false);
    }

    public async Task TerminateSessionAsync(HttpContext ctx)
    {
        if (OwnSession(ctx) is not { } session)
        {
            await NotOwnSessionAsync(ctx).ConfigureAwait(false);
            return;
        }
        if (!await RelayAsync(ctx, session.SessionId, session.ApplicationId, session.PeerApplicationId, session.PeerKmeId, session.RequestedThroughput, "terminating").ConfigureAwait(false))
        {
            return;
        }
        var terminating = Sessions.Terminate(session.SessionId)!;
        await WriteAsync(ctx, 200, SessionView.Of(terminating), NodeJsonContext.Default.SessionView).ConfigureAwait(false);
    }

    /// <summary>
    /// At a slave, a session toward the master's SAEs is relayed to the master (design
    /// source S104, S303: the peer node keeps the associated session), because the master
    /// generates the keys and its rate must count the session. Answers 503 itself and
    /// returns false when the master cannot be told; nothing changes locally then.
    /// </summary>
    private async Task<bool> RelayAsync(HttpContext ctx, Guid sessionId, string application, string peerSae, string peerKme, double throughput, string state)
    {
        if (_link is null || _options.Peer is not { Role: QkdPeerRole.Slave } peer || peerKme != peer.KmeId)
        {
            return true;
        }
        var relayed = await _link.RelaySessionAsync(new LinkSession
        {
            SessionId = sessionId.ToString(),
            ApplicationId = application,
            PeerSaeId = peerSae,
            Throughput = throughput,
            State = state,
        }, ctx.RequestAborted).ConfigureAwait(false);
        if (!relayed)
        {
            await ErrorAsync(ctx, 503, $"paired KME {peer.KmeId} is unreachable; the session was not changed").ConfigureAwait(false);
        }
        return relayed;
    }

    /// <summary>Master side: a session opened, changed or ended at the slave.</summary>
    public async Task LinkSessionAsync(HttpContext ctx)
    {
        if (!IsPeerLink(ctx) || _options.Peer!.Role != QkdPeerRole.Master)
        {
            await UnauthorizedAsync(ctx).ConfigureAwait(false);
            return;
        }
        var relayed = await ReadAsync(ctx, NodeJsonContext.Default.LinkSession).ConfigureAwait(false);
        if (relayed is null || relayed.SourceKmeId != _options.Peer.KmeId || !Guid.TryParse(relayed.SessionId, out var id)
            || !double.IsFinite(relayed.Throughput) || relayed.Throughput < 0)
        {
            await ErrorAsync(ctx, 400, "not a session relay from the paired KME").ConfigureAwait(false);
            return;
        }
        var known = Sessions.Find(id);
        switch (relayed.State)
        {
            case "starting" when known is null:
                // Seen from here the session's correspondent node is the slave.
                Sessions.Open(relayed.ApplicationId, relayed.PeerSaeId, _options.Peer.KmeId, relayed.Throughput, id);
                break;
            case "connected" when known is not null:
                Sessions.ChangeThroughput(id, relayed.Throughput);
                break;
            case "terminating" when known is not null:
                Sessions.Terminate(id);
                break;
            default:
                await ErrorAsync(ctx, 409, "session relay does not match the sessions held here").ConfigureAwait(false);
                return;
        }
        ctx.Response.StatusCode = 204;
    }

    private KeyUseSession? OwnSession(HttpContext ctx) =>
        LocalSae(ctx) is { } caller && Guid.TryParse((string?)ctx.Request.RouteValues["id"], out var id) && Sessions.Find(id) is { } s && s.ApplicationId == caller ? s : null;

    private Task NotOwnSessionAsync(HttpContext ctx) =>
        LocalSae(ctx) is null ? UnauthorizedAsync(ctx) : ErrorAsync(ctx, 404, "no such session of this SAE");

    // ---- inter-KME link (not ETSI) ----

    private bool IsPeerLink(HttpContext ctx) => _options.Peer is { } peer && Caller(ctx) == peer.ExpectedLinkName;

    public async Task LinkKeysAsync(HttpContext ctx)
    {
        if (!IsPeerLink(ctx) || _options.Peer!.Role != QkdPeerRole.Slave)
        {
            await UnauthorizedAsync(ctx).ConfigureAwait(false);
            return;
        }
        var push = await ReadAsync(ctx, NodeJsonContext.Default.LinkKeyPush).ConfigureAwait(false);
        if (push is null || push.SourceKmeId != _options.Peer.KmeId)
        {
            await ErrorAsync(ctx, 400, "not a key push from the paired KME").ConfigureAwait(false);
            return;
        }
        var keys = new List<StoredKey>(push.Keys.Count);
        foreach (var k in push.Keys)
        {
            if (!Guid.TryParse(k.KeyId, out var id) || k.Key.Length != _options.KeySizeBits / 8)
            {
                await ErrorAsync(ctx, 400, "pushed key with a bad key_ID or size").ConfigureAwait(false);
                return;
            }
            keys.Add(new StoredKey(id, k.Key));
        }
        Interlocked.Add(ref _received, Store.Add(_options.Peer.KmeId, keys));
        if (push.GenerationRate is { } rate && double.IsFinite(rate) && rate >= 0)
        {
            Volatile.Write(ref _peerGenerationRate, rate);
        }
        if (Store.Count(_options.Peer.KmeId) > 0)
        {
            Sessions.MarkConnected(_options.Peer.KmeId);
        }
        ctx.Response.StatusCode = 204;
    }

    public async Task LinkAssignAsync(HttpContext ctx)
    {
        if (!IsPeerLink(ctx) || _options.Peer!.Role != QkdPeerRole.Slave)
        {
            await UnauthorizedAsync(ctx).ConfigureAwait(false);
            return;
        }
        var assignment = await ReadAsync(ctx, NodeJsonContext.Default.LinkAssignment).ConfigureAwait(false);
        var ids = new List<Guid>();
        foreach (var id in assignment?.KeyIds ?? [])
        {
            if (Guid.TryParse(id, out var g))
            {
                ids.Add(g);
            }
        }
        if (assignment is null || ids.Count == 0 || ids.Count != assignment.KeyIds.Count || assignment.Size % 8 != 0
            || !Store.Assign(_options.Peer.KmeId, ids, assignment.Size / 8, assignment.MasterSaeId, assignment.SlaveSaeId))
        {
            await ErrorAsync(ctx, 409, "assignment names keys this KME does not hold").ConfigureAwait(false);
            return;
        }
        ctx.Response.StatusCode = 204;
    }
}
