namespace MipKeyAgent.Protocol.Tests.Scenarios;

/// <summary>
/// KEY-STATUS 1 (PROTOCOL.md sections 1 and 6): a drained key source never costs a node its keys;
/// with <see cref="HomeAgent.HomeAgentOptions.FallbackKeySource"/> the HA rekeys with a local key instead.
/// </summary>
public sealed class KeySourceUnavailableTests
{
    [Fact]
    public void SourceUnavailable_Update_NodeKeepsKeysDataFlowsThenRekeysAfterRetryAfter()
    {
        var source = new SeededKeySource(3) { RetryAfter = TimeSpan.FromSeconds(7) };
        using var bed = Testbed.Started(new TestbedSettings { KeySource = source });
        Assert.Equal(new Generation(1), bed.Node.View.Newest);

        source.UnavailableFor = 1;
        bed.Update();

        Assert.Equal(1, bed.HomeAgent.Counters.KeySourceUnavailable);
        Assert.Equal(1, bed.Node.Engine.Counters.KeySourceUnavailable);
        Assert.Contains(bed.Events, e => e.Kind == ProtocolEventKind.KeyStatus);
        Assert.Equal(new Generation(1), bed.Node.View.Newest);
        Assert.Equal(new Generation(1), bed.HomeAgentView().Newest);
        Assert.Equal(bed.Now + TimeSpan.FromSeconds(7), bed.Node.Engine.NextDeadline);
        bed.AssertDataFlows();

        bed.Run(TimeSpan.FromSeconds(7));
        Assert.Equal(new Generation(2), bed.Node.View.Newest);
        Assert.Equal(new Generation(2), bed.HomeAgentView().Newest);
        bed.AssertDataFlows();
    }

    [Fact]
    public void SourceUnavailable_ThenDeregistered_NoKeyRetryIsSent()
    {
        var source = new SeededKeySource(3) { RetryAfter = TimeSpan.FromSeconds(7) };
        using var bed = Testbed.Started(new TestbedSettings { KeySource = source });
        source.UnavailableFor = 1;
        bed.Update();
        Assert.Equal(bed.Now + TimeSpan.FromSeconds(7), bed.Node.Engine.NextDeadline);

        bed.Node.Engine.Deregister();
        bed.Driver.Pump();
        Assert.Equal(1, bed.Node.Engine.Counters.Deregistrations);
        int sent = bed.Driver.Sent.Count;

        // The retry asked for a key of a registration that no longer exists: it goes with it.
        Assert.Null(bed.Node.Engine.NextDeadline);
        bed.Run(TimeSpan.FromSeconds(10));
        Assert.Equal(sent, bed.Driver.Sent.Count);
    }

    [Fact]
    public void SourceUnavailable_FallbackConfigured_RekeysWithLocalKeyNoKeyStatus()
    {
        var source = new SeededKeySource(3);
        var fallback = new SeededKeySource(44);
        using var bed = Testbed.Started(new TestbedSettings { KeySource = source, FallbackKeySource = fallback });
        Assert.Equal(0, fallback.Delivered);

        source.UnavailableFor = 1;
        bed.Update();

        Assert.Equal(1, fallback.Delivered);
        Assert.Equal(1, bed.HomeAgent.Counters.KeyFallbacks);
        Assert.Equal(0, bed.HomeAgent.Counters.KeySourceUnavailable);
        Assert.Equal(0, bed.Node.Engine.Counters.KeySourceUnavailable);
        Assert.Contains(bed.Events, e => e.Kind == ProtocolEventKind.KeyFallback && e.Generation == new Generation(2));
        Assert.Equal(new Generation(2), bed.Node.View.Newest);
        bed.AssertDataFlows();
    }

    [Fact]
    public void SourceAndFallbackUnavailable_Update_KeyStatusOne()
    {
        var source = new SeededKeySource(3);
        var fallback = new SeededKeySource(44);
        using var bed = Testbed.Started(new TestbedSettings { KeySource = source, FallbackKeySource = fallback });
        source.UnavailableFor = 1;
        fallback.UnavailableFor = 1;
        bed.Update();

        Assert.Equal(1, bed.Node.Engine.Counters.KeySourceUnavailable);
        Assert.Equal(0, bed.HomeAgent.Counters.KeyFallbacks);
        Assert.Equal(new Generation(1), bed.Node.View.Newest);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SourceUnavailable_HomeAgentTimerRekey_NodeRetriesAtRetryAfterAndRekeys(bool bindingRefreshRequest)
    {
        // The HA's own timer consumes its expiry flag at the BU it answers with KEY-STATUS 1: the retry
        // after Retry-After must come from the node (a KEY-UPDATE-REQ), or the rekey the HA wanted waits
        // for its next timer period (here 1000 s).
        var source = new SeededKeySource(3) { RetryAfter = TimeSpan.FromSeconds(5) };
        using var bed = new Testbed(new TestbedSettings
        {
            KeySource = source,
            HomeAgentRekey = TimeSpan.FromSeconds(1000),
            BindingRefreshRequest = bindingRefreshRequest,
        });
        bed.Start();
        // g1 confirmed now: the HA's timer counts from here (PROTOCOL.md 8.4).
        bed.AssertDataFlows();
        source.UnavailableFor = 1;

        // Up to the timer and, without a BRR, the node's next BU (its binding refresh).
        bed.Run(bindingRefreshRequest ? TimeSpan.FromSeconds(1000.5) : TimeSpan.FromSeconds(1000));
        if (!bindingRefreshRequest)
        {
            bed.Node.Engine.MoveTo(bed.Node.CareOf);
            bed.Driver.Pump();
        }

        Assert.Equal(1, bed.HomeAgent.Counters.KeySourceUnavailable);
        Assert.Equal(1, bed.Node.Engine.Counters.KeySourceUnavailable);
        Assert.Equal(new Generation(1), bed.Node.View.Newest);
        bed.AssertDataFlows();

        bed.Run(TimeSpan.FromSeconds(6));
        Assert.Equal(new Generation(2), bed.Node.View.Newest);
        Assert.Equal(new Generation(2), bed.HomeAgentView().Newest);
        Assert.False(bed.HomeAgentView().RekeyPending);
        bed.AssertDataFlows();
    }

    [Fact]
    public void BoundNodeCount_InitsAndDeregistration_CountsNodesWithBinding()
    {
        using var bed = new Testbed(new TestbedSettings { Nodes = 3 });
        Assert.Equal(0, bed.HomeAgent.BoundNodeCount);
        bed.Start();
        Assert.Equal(3, bed.HomeAgent.BoundNodeCount);
        bed.Nodes[1].Engine.Deregister();
        bed.Driver.Pump();
        Assert.Equal(2, bed.HomeAgent.BoundNodeCount);
    }
}
