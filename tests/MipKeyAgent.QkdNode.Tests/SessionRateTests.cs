using Microsoft.Extensions.Time.Testing;
using System.Net.Http.Json;
using System.Text.Json;
using MipKeyAgent.KeySupply.Etsi014;
using MipKeyAgent.TestSupport;

namespace MipKeyAgent.QkdNode.Tests;

/// <summary>Key-use sessions and the generation rate they drive (design source FIG. 6, 8-10).</summary>
public sealed class SessionRateTests
{
    private static readonly TimeSpan Second = TimeSpan.FromSeconds(1);

    private static (FakeTimeProvider Time, SessionTable Sessions, KeyGenerationPlanner Planner) Make(double linkKeyRate = 1000)
    {
        var time = TestTime.NewClock();
        var sessions = new SessionTable(time);
        return (time, sessions, new KeyGenerationPlanner(time, sessions, linkKeyRate, ["KME_B", "KME_C"]));
    }

    [Fact]
    public void NoSessions_TimePasses_NothingGenerated()
    {
        var (time, _, planner) = Make();
        time.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(0, planner.TakeDue("KME_B", 10_000));
        Assert.Equal(0, planner.RateFor("KME_B"));
    }

    [Fact]
    public void ThroughputChanges_ConnectedSession_RateFollows()
    {
        var (time, sessions, planner) = Make();
        var s = sessions.Open("SAE_HA", "SAE_MN1", "KME_B", requestedThroughput: 10);
        sessions.MarkConnected("KME_B");
        time.Advance(Second);
        Assert.Equal(10, planner.TakeDue("KME_B", 10_000));

        sessions.ChangeThroughput(s.SessionId, 30);
        Assert.Equal(SessionState.Connected, sessions.Find(s.SessionId)!.State);
        time.Advance(2 * Second);
        Assert.Equal(60, planner.TakeDue("KME_B", 10_000));

        sessions.ChangeThroughput(s.SessionId, 4);
        time.Advance(Second);
        Assert.Equal(4, planner.TakeDue("KME_B", 10_000));
    }

    [Fact]
    public void TwoSessions_SamePeer_RatesAddUpOtherPeerUntouched()
    {
        var (time, sessions, planner) = Make();
        sessions.Open("SAE_HA", "SAE_MN1", "KME_B", 10);
        sessions.Open("SAE_HA", "SAE_MN2", "KME_B", 15);
        Assert.Equal(new PeerDemand(2, 0, 25), sessions.DemandFor("KME_B"));
        time.Advance(Second);
        Assert.Equal(25, planner.TakeDue("KME_B", 10_000));
        Assert.Equal(0, planner.TakeDue("KME_C", 10_000));
    }

    [Fact]
    public void DemandAboveLinkRate_Session_CappedAtLinkKeyRate()
    {
        var (time, sessions, planner) = Make(linkKeyRate: 40);
        sessions.Open("SAE_HA", "SAE_MN1", "KME_B", 100);
        Assert.Equal(40, planner.RateFor("KME_B"));
        time.Advance(Second);
        Assert.Equal(40, planner.TakeDue("KME_B", 10_000));
    }

    [Fact]
    public void LastSessionTerminated_Generation_Stops()
    {
        var (time, sessions, planner) = Make();
        var s = sessions.Open("SAE_HA", "SAE_MN1", "KME_B", 50);
        time.Advance(Second);
        Assert.Equal(50, planner.TakeDue("KME_B", 10_000));
        Assert.Equal(SessionState.Terminating, sessions.Terminate(s.SessionId)!.State);
        time.Advance(Second);
        Assert.Equal(0, planner.TakeDue("KME_B", 10_000));
        Assert.Equal(1, sessions.DeleteTerminated());
        Assert.Null(sessions.Find(s.SessionId));
        time.Advance(10 * Second);
        Assert.Equal(0, planner.TakeDue("KME_B", 10_000));
    }

    [Fact]
    public void SlowRate_ManyShortSteps_FractionsCarryOver()
    {
        var (time, sessions, planner) = Make();
        sessions.Open("SAE_HA", "SAE_MN1", "KME_B", 0.5);
        var total = 0;
        for (var i = 0; i < 40; i++)
        {
            time.Advance(TimeSpan.FromMilliseconds(100));
            total += planner.TakeDue("KME_B", 10_000);
        }
        Assert.Equal(2, total);
    }

    [Fact]
    public void PoolNearlyFull_Due_LimitedToRoomAndNotBanked()
    {
        var (time, sessions, planner) = Make();
        sessions.Open("SAE_HA", "SAE_MN1", "KME_B", 100);
        time.Advance(Second);
        Assert.Equal(3, planner.TakeDue("KME_B", 3));
        time.Advance(Second);
        Assert.Equal(100, planner.TakeDue("KME_B", 10_000));
    }

    [Fact]
    public void ThroughputChange_TerminatingSession_Ignored()
    {
        var (_, sessions, _) = Make();
        var s = sessions.Open("SAE_HA", "SAE_MN1", "KME_B", 5);
        sessions.Terminate(s.SessionId);
        sessions.ChangeThroughput(s.SessionId, 50);
        Assert.Equal(new PeerDemand(0, 0, 0), sessions.DemandFor("KME_B"));
    }

    /// <summary>The whole node on a manual clock: sessions over HTTPS, generation by timer ticks.</summary>
    [Fact]
    public async Task SessionLifecycle_NodeOnManualClock_PoolGrowsWithThroughputAndStops()
    {
        var time = TestTime.NewClock();
        await using var node = await Nodes.StartSingleAsync(prefill: 0, time: time);
        using var http = SaeHttp(node, "SAE_HA");
        using var etsi = Nodes.Client(node.Address, "SAE_HA");
        async Task<int> Stored() => (await etsi.GetStatusAsync("SAE_MN1")).Value!.StoredKeyCount;

        time.Advance(Second);
        Assert.Equal(0, await Stored());

        var opened = await http.PostAsJsonAsync("/api/v1/sessions", new { peer_SAE_ID = "SAE_MN1", throughput = 20 });
        Assert.Equal(System.Net.HttpStatusCode.Created, opened.StatusCode);
        var session = JsonDocument.Parse(await opened.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("starting", session.GetProperty("state").GetString());
        var id = session.GetProperty("session_ID").GetString();

        time.Advance(Second);
        Assert.Equal(20, await Stored());
        Assert.Contains("\"state\":\"connected\"", await http.GetStringAsync("/api/v1/sessions"));

        Assert.True((await http.PutAsJsonAsync($"/api/v1/sessions/{id}", new { throughput = 5 })).IsSuccessStatusCode);
        time.Advance(2 * Second);
        Assert.Equal(30, await Stored());
        var status = (await etsi.GetStatusAsync("SAE_MN1")).Value!;
        Assert.Equal(5, status.StatusExtension!["generation_rate"]!.GetValue<double>());
        Assert.Equal(1, status.StatusExtension["sessions_connected"]!.GetValue<int>());
        Assert.Contains("qkd_generation_rate_keys_per_second{kme=\"KME_A\",peer_kme=\"KME_A\"} 5\n", await http.GetStringAsync("/metrics"));

        var closed = await http.DeleteAsync($"/api/v1/sessions/{id}");
        Assert.Contains("\"state\":\"terminating\"", await closed.Content.ReadAsStringAsync());
        time.Advance(5 * Second);
        Assert.Equal(30, await Stored());
        Assert.Equal("{\"sessions\":[]}", await http.GetStringAsync("/api/v1/sessions"));
        Assert.Contains("qkd_generation_rate_keys_per_second{kme=\"KME_A\",peer_kme=\"KME_A\"} 0\n", await http.GetStringAsync("/metrics"));
    }

    [Fact]
    public async Task OpenSession_UnknownPeerOrNegativeThroughput_400()
    {
        await using var node = await Nodes.StartSingleAsync(prefill: 0, time: TestTime.NewClock());
        using var http = SaeHttp(node, "SAE_HA");
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, (await http.PostAsJsonAsync("/api/v1/sessions", new { peer_SAE_ID = "SAE_X", throughput = 1 })).StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, (await http.PostAsJsonAsync("/api/v1/sessions", new { peer_SAE_ID = "SAE_MN1", throughput = -1 })).StatusCode);
    }

    [Fact]
    public async Task ChangeSession_OfAnotherSae_404()
    {
        await using var node = await Nodes.StartSingleAsync(prefill: 0, time: TestTime.NewClock());
        using var ha = SaeHttp(node, "SAE_HA");
        using var mn = SaeHttp(node, "SAE_MN1");
        var opened = await ha.PostAsJsonAsync("/api/v1/sessions", new { peer_SAE_ID = "SAE_MN1", throughput = 1 });
        var id = JsonDocument.Parse(await opened.Content.ReadAsStringAsync()).RootElement.GetProperty("session_ID").GetString();
        Assert.Equal(System.Net.HttpStatusCode.NotFound, (await mn.DeleteAsync($"/api/v1/sessions/{id}")).StatusCode);
    }

    private static HttpClient SaeHttp(QkdNodeHost node, string sae)
    {
        var cert = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(LabPki.Main.SaeCert(sae), LabPki.Main.SaeKey(sae));
        var bundle = TrustedCaBundle.LoadPem(LabPki.Main.Ca);
        var handler = new SocketsHttpHandler
        {
            SslOptions = new System.Net.Security.SslClientAuthenticationOptions
            {
                ClientCertificates = [cert],
                LocalCertificateSelectionCallback = (_, _, _, _, _) => cert,
                RemoteCertificateValidationCallback = (_, c, chain, errors) => bundle.ValidateServer(c, chain, errors),
            },
        };
        return new HttpClient(handler) { BaseAddress = node.Address };
    }
}
