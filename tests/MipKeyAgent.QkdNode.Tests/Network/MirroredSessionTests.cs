using System.Text.Json;

namespace MipKeyAgent.QkdNode.Tests.Network;

/// <summary>
/// Key-use sessions across the network (design source S104-S113): a session opened at A toward an
/// application at C is mirrored at C through B, with C's application asked to accept it when C
/// requires that; throughput changes and termination reach the other end; both ends answer
/// GET /api/v1/sessions/{id} alike.
/// </summary>
public sealed class MirroredSessionTests
{
    private static async Task Until(Func<Task<bool>> condition, string failure)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, failure);
            await Task.Delay(20);
        }
    }

    private static async Task<JsonElement> GetAsync(SaeHttp client, string id)
    {
        var (status, body) = await client.SendAsync(HttpMethod.Get, $"/api/v1/sessions/{id}");
        Assert.Equal(200, status);
        return body;
    }

    /// <summary>The fields both ends must agree on.</summary>
    private static string Shared(JsonElement s) =>
        $"{s.GetProperty("session_ID")}|{s.GetProperty("application_ID")}|{s.GetProperty("peer_SAE_ID")}|{s.GetProperty("state")}|{s.GetProperty("throughput")}|{s.GetProperty("accepted")}";

    [Fact]
    public async Task OpenedAtA_MirroredAtCThroughB_BothEndsAgreeThroughChangeAndTermination()
    {
        await using var chain = await QkdChain.StartAsync(prefill: 5);
        using var ha = SaeHttp.Sae(chain.UriA, "SAE_HA");
        using var mn = SaeHttp.Sae(chain.UriC, "SAE_MN1");
        var (status, opened) = await ha.SendAsync(HttpMethod.Post, "/api/v1/sessions", """{"peer_SAE_ID":"SAE_MN1","throughput":40}""");
        Assert.Equal(201, status);
        var id = opened.GetProperty("session_ID").GetString()!;
        Assert.True(opened.GetProperty("accepted").GetBoolean());
        Assert.Equal("local", opened.GetProperty("role").GetString());

        // S105: C holds the session for its application; B keeps a transit entry.
        var mirrored = await GetAsync(mn, id);
        Assert.Equal("mirrored", mirrored.GetProperty("role").GetString());
        Assert.Equal("SAE_HA", mirrored.GetProperty("application_ID").GetString());
        Assert.Equal("KME_A", mirrored.GetProperty("peer_KME_ID").GetString());
        Assert.Equal(SessionRole.Transit, chain.B!.Node.Sessions.Find(Guid.Parse(id))!.Role);
        // Both generating nodes on the route count it: A for link A-B, B for link B-C.
        Assert.Equal(40, chain.A.Node.Planner.RateFor("KME_B"));
        Assert.Equal(40, chain.B.Node.Planner.RateFor("KME_C"));

        // S111-S113: connected at both ends once keys flow.
        await Until(async () => (await GetAsync(ha, id)).GetProperty("state").GetString() == "connected"
            && (await GetAsync(mn, id)).GetProperty("state").GetString() == "connected", "the session never became connected at both ends");
        Assert.Equal(Shared(await GetAsync(ha, id)), Shared(await GetAsync(mn, id)));

        // Throughput change at A reaches C and B's rate.
        Assert.Equal(200, (await ha.SendAsync(HttpMethod.Put, $"/api/v1/sessions/{id}", """{"throughput":7}""")).Status);
        Assert.Equal(7, (await GetAsync(mn, id)).GetProperty("throughput").GetDouble());
        Assert.Equal(7, chain.B.Node.Planner.RateFor("KME_C"));
        Assert.Equal(Shared(await GetAsync(ha, id)), Shared(await GetAsync(mn, id)));

        // Termination at A ends it everywhere: no more generation on either link.
        Assert.Equal(200, (await ha.SendAsync(HttpMethod.Delete, $"/api/v1/sessions/{id}")).Status);
        Assert.Equal(0, chain.A.Node.Planner.RateFor("KME_B"));
        Assert.Equal(0, chain.B.Node.Planner.RateFor("KME_C"));
        await Until(async () => (await mn.SendAsync(HttpMethod.Get, $"/api/v1/sessions/{id}")).Status == 404
            && (await ha.SendAsync(HttpMethod.Get, $"/api/v1/sessions/{id}")).Status == 404, "the terminated session was never deleted at both ends");
    }

    [Fact]
    public async Task TerminatedByThePeerApplicationAtC_EndsAtA()
    {
        await using var chain = await QkdChain.StartAsync(prefill: 5);
        using var ha = SaeHttp.Sae(chain.UriA, "SAE_HA");
        using var mn = SaeHttp.Sae(chain.UriC, "SAE_MN1");
        var id = (await ha.SendAsync(HttpMethod.Post, "/api/v1/sessions", """{"peer_SAE_ID":"SAE_MN1","throughput":10}""")).Body.GetProperty("session_ID").GetString()!;
        var (status, ended) = await mn.SendAsync(HttpMethod.Delete, $"/api/v1/sessions/{id}");
        Assert.Equal(200, status);
        Assert.Equal("terminating", ended.GetProperty("state").GetString());
        Assert.Equal(0, chain.A.Node.Planner.RateFor("KME_B"));
        Assert.Equal(0, chain.B!.Node.Planner.RateFor("KME_C"));
    }

    [Fact]
    public async Task AcceptanceRequired_PendingAsksNoKeysUntilAccepted_RefusalEndsIt()
    {
        await using var chain = await QkdChain.StartAsync(prefill: 5, needAcceptance: true);
        using var ha = SaeHttp.Sae(chain.UriA, "SAE_HA");
        using var mn = SaeHttp.Sae(chain.UriC, "SAE_MN1");
        var (_, opened) = await ha.SendAsync(HttpMethod.Post, "/api/v1/sessions", """{"peer_SAE_ID":"SAE_MN1","throughput":30}""");
        var id = opened.GetProperty("session_ID").GetString()!;
        Assert.False(opened.GetProperty("accepted").GetBoolean());
        Assert.Equal(0, chain.A.Node.Planner.RateFor("KME_B"));

        // S106: C's application sees the request in its list; S107-S108: it accepts.
        var (_, list) = await mn.SendAsync(HttpMethod.Get, "/api/v1/sessions");
        var pending = Assert.Single(list.GetProperty("sessions").EnumerateArray());
        Assert.Equal(id, pending.GetProperty("session_ID").GetString());
        Assert.False(pending.GetProperty("accepted").GetBoolean());
        await Task.Delay(200);
        Assert.Equal("starting", (await GetAsync(ha, id)).GetProperty("state").GetString()); // never connected while pending
        // Only the peer application answers; the opener cannot accept for it.
        Assert.Equal(400, (await ha.SendAsync(HttpMethod.Put, $"/api/v1/sessions/{id}", """{"accept":true}""")).Status);
        Assert.Equal(200, (await mn.SendAsync(HttpMethod.Put, $"/api/v1/sessions/{id}", """{"accept":true}""")).Status);
        Assert.True((await GetAsync(ha, id)).GetProperty("accepted").GetBoolean());
        Assert.Equal(30, chain.A.Node.Planner.RateFor("KME_B"));
        Assert.Equal(30, chain.B!.Node.Planner.RateFor("KME_C"));
        await Until(async () => Shared(await GetAsync(ha, id)) == Shared(await GetAsync(mn, id))
            && (await GetAsync(mn, id)).GetProperty("state").GetString() == "connected", "the accepted session never connected at both ends");

        // A second request, refused: terminating at both ends, no keys asked for.
        var second = (await ha.SendAsync(HttpMethod.Post, "/api/v1/sessions", """{"peer_SAE_ID":"SAE_MN1","throughput":5}""")).Body.GetProperty("session_ID").GetString()!;
        var (status, refused) = await mn.SendAsync(HttpMethod.Put, $"/api/v1/sessions/{second}", """{"accept":false}""");
        Assert.Equal(200, status);
        Assert.Equal("terminating", refused.GetProperty("state").GetString());
        Assert.Equal(SessionState.Terminating, chain.A.Node.Sessions.Find(Guid.Parse(second))?.State ?? SessionState.Terminating);
        Assert.Equal(30, chain.A.Node.Planner.RateFor("KME_B"));
    }

    [Fact]
    public async Task IntermediateNodeDown_OpenAndChange503_NothingChangedAtEitherEnd()
    {
        await using var chain = await QkdChain.StartAsync(prefill: 5);
        using var ha = SaeHttp.Sae(chain.UriA, "SAE_HA");
        using var mn = SaeHttp.Sae(chain.UriC, "SAE_MN1");
        var id = (await ha.SendAsync(HttpMethod.Post, "/api/v1/sessions", """{"peer_SAE_ID":"SAE_MN1","throughput":10}""")).Body.GetProperty("session_ID").GetString()!;
        await chain.StopBAsync();
        var (status, error) = await ha.SendAsync(HttpMethod.Post, "/api/v1/sessions", """{"peer_SAE_ID":"SAE_MN1","throughput":10}""");
        Assert.Equal(503, status);
        Assert.Contains("unreachable", error.GetProperty("message").GetString());
        Assert.Equal(503, (await ha.SendAsync(HttpMethod.Put, $"/api/v1/sessions/{id}", """{"throughput":99}""")).Status);
        Assert.Equal(10, (await GetAsync(ha, id)).GetProperty("throughput").GetDouble());
        Assert.Equal(10, (await GetAsync(mn, id)).GetProperty("throughput").GetDouble());
        Assert.Single(chain.A.Node.Sessions.All());
        Assert.Single(chain.C.Node.Sessions.All());
    }
}
