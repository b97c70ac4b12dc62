using MipKeyAgent.Cli.Report;

namespace MipKeyAgent.Cli.Tests.Replay;

/// <summary>The HTML report's model, built from the replay timeline of the golden captures (the page itself: Browser.Tests).</summary>
public sealed class LadderReportTests
{
    private static LadderReport Model(string capture) => LadderReport.From(CaptureFiles.Replay(capture), capture);

    private static int Row(LadderReport model, string message) =>
        Enumerable.Range(0, model.Count).Single(i => model.Strings[model.Message[i]] == message);

    private static bool Has(LadderReport model, int row, LadderFlags flag) => ((LadderFlags)model.Flags[row] & flag) != 0;

    [Fact]
    public void HaKeyLoss_Model_MarksRetransmissionsNotTheReInitAndDropsTheOldGenerationAtTheNewKeyDistribution()
    {
        var model = Model("ha-key-loss");
        var replay = CaptureFiles.Replay("ha-key-loss");

        Assert.Equal(replay.Rows.Count, model.Count);
        Assert.Equal(["mn1"], model.Nodes);
        // The refresh BUs under g1 go unanswered (captures/README.md): each one after the first repeats it.
        Assert.False(Has(model, Row(model, "BU seq 1"), LadderFlags.Retransmission));
        Assert.True(Has(model, Row(model, "BU seq 2"), LadderFlags.Retransmission));
        Assert.True(Has(model, Row(model, "BU seq 4"), LadderFlags.Retransmission));
        // The re-initialization is a new request, not a retransmission.
        int reinit = Row(model, "BU seq 5 KEY-INIT-REQ epoch 2");
        Assert.False(Has(model, reinit, LadderFlags.Retransmission));

        // Two g1s (the HA lost its state): the first is dropped by the KEY-DIST answering the re-init.
        var g1s = model.Generations.Where(g => g.Generation == "g1").ToList();
        Assert.Equal(2, g1s.Count);
        Assert.NotEqual(g1s[0].Spis, g1s[1].Spis);
        Assert.True(g1s[0].Confirmed > g1s[0].Issued);
        Assert.Equal(g1s[1].Issued, g1s[0].Dropped);
        Assert.True(g1s[1].Issued > reinit);
        Assert.True(g1s[1].Confirmed > g1s[1].Issued);
        Assert.Equal(-1, g1s[1].Dropped);

        // Every anomaly of the replay is linked to a row at its time, and that row is marked.
        Assert.Equal(replay.Anomalies.Count, model.Anomalies.Count);
        foreach (var anomaly in model.Anomalies)
        {
            Assert.InRange(anomaly.Row, 0, model.Count - 1);
            Assert.True(Has(model, anomaly.Row, LadderFlags.Anomaly));
            Assert.Equal(anomaly.Microseconds, model.Microseconds[anomaly.Row]);
        }
    }

    [Fact]
    public void LostBaExplicit_Model_MarksTheResendRequestAndTheRepeatedKeyDistribution()
    {
        var model = Model("lost-ba-explicit");
        var keyDists = Enumerable.Range(0, model.Count).Where(i => Has(model, i, LadderFlags.KeyDistribution)).ToList();
        Assert.Equal(3, keyDists.Count);
        Assert.False(Has(model, keyDists[1], LadderFlags.Resend));
        Assert.True(Has(model, keyDists[2], LadderFlags.Resend));
        Assert.True(Has(model, Row(model, "BU seq 2 KEY-RESEND-REQ g1"), LadderFlags.Resend));
        // g2 issued once (the resend carries the same SPIs), confirmed after the resend.
        var g2 = Assert.Single(model.Generations, g => g.Generation == "g2");
        Assert.Equal(keyDists[1], g2.Issued);
        Assert.True(g2.Confirmed > keyDists[2]);
    }

    [Fact]
    public void ManyNodes_Model_OneLanePerNodeAndTwoGenerationsEachNoneDropped()
    {
        var model = Model("many-nodes");
        Assert.Equal(4, model.Nodes.Count);
        Assert.Equal(8, model.Generations.Count);
        Assert.All(model.Generations, g => Assert.Equal(-1, g.Dropped));
        Assert.All(model.Generations, g => Assert.True(g.Confirmed > g.Issued));
        Assert.Equal(4, model.Generations.Select(g => g.Node).Distinct().Count());
    }

    [Fact]
    public void Page_ReportModel_IsEmbeddedAsJsonThatCannotCloseItsScriptElement()
    {
        var model = LadderReport.From(CaptureFiles.Replay("startup-init"), "</script><script>alert(1)</script>");
        var html = LadderReportPage.Render(model);
        // The page's own two script elements close, nothing else does.
        Assert.Equal(2, System.Text.RegularExpressions.Regex.Count(html, "</script>"));
        Assert.DoesNotContain("<script>alert", html, StringComparison.Ordinal);
        Assert.DoesNotContain("http://", html.Replace("http://www.w3.org/2000/svg", "", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.DoesNotContain("https://", html, StringComparison.Ordinal);
    }
}
