using Microsoft.Extensions.Time.Testing;

namespace MipKeyAgent.Protocol.Tests.HomeAgent;

/// <summary>
/// Rekey-timer and expiry handling does not scan all bindings per tick. Counted
/// work (nodes <see cref="HomeAgentEngine.Tick"/> visits), not time.
/// </summary>
public sealed class TimerScalingTests
{
    private static readonly DateTimeOffset Start = TestTime.Start;

    private sealed class NullSink : IDatagramSink
    {
        public int Sent { get; private set; }

        public void Send(ReadOnlySpan<byte> datagram) => Sent++;
    }

    /// <summary>
    /// An HA restored with <paramref name="bindings"/> bound nodes whose binding expires in an hour
    /// and whose rekey timer fires in two; node 0's binding expires after 10 s, node 1's rekey timer
    /// fires after 20 s.
    /// </summary>
    private static (HomeAgentEngine Engine, FakeTimeProvider Clock) Restored(int bindings)
    {
        var clock = new FakeTimeProvider(Start);
        var store = new InMemoryBindingStore();
        var provisionings = new List<MobileNodeProvisioning>();
        for (int i = 0; i < bindings; i++)
        {
            var home = new Ipv6Address((UInt128)0x2001_0db8_0002_0000UL << 64 | (UInt128)(i + 1));
            provisionings.Add(new MobileNodeProvisioning(home, new byte[32], new Spi(1000 + 2 * (uint)i), new Spi(1001 + 2 * (uint)i)));
            store.Save(new BindingRecord(home, new Ipv6Address(7), Start + (i == 0 ? TimeSpan.FromSeconds(10) : TimeSpan.FromHours(1)),
                1, null, default, default, null, null, Start + (i == 1 ? TimeSpan.FromSeconds(20) : TimeSpan.FromHours(2)), false));
        }
        var engine = new HomeAgentEngine(new HomeAgentOptions { Address = new Ipv6Address(1), RekeyInterval = TimeSpan.FromHours(2) }, clock,
            new LocalRandomKeySource(), new RandomSpiSource(), new NullSink(), store);
        foreach (var provisioning in provisionings)
        {
            engine.Provision(provisioning);
        }
        return (engine, clock);
    }

    [Theory]
    [InlineData(10)]
    [InlineData(5000)]
    public void Tick_ManyBindings_VisitsOnlyTheDueNodes(int bindings)
    {
        var (engine, clock) = Restored(bindings);
        using var _ = engine;
        Assert.Equal(Start + TimeSpan.FromSeconds(10), engine.NextDeadline);

        // Nothing due: an idle tick touches no node.
        for (int i = 0; i < 100; i++)
        {
            engine.Tick();
        }
        Assert.Equal(0, engine.TimerNodesVisited);

        // Node 0's binding expires: one node visited, whatever the binding count.
        clock.Advance(TimeSpan.FromSeconds(15));
        engine.Tick();
        Assert.Equal(1, engine.TimerNodesVisited);
        Assert.Equal(1, engine.Counters.BindingsExpired);
        Assert.Null(engine.GetNode(new Ipv6Address((UInt128)0x2001_0db8_0002_0000UL << 64 | 1))!.CareOfAddress);

        // Node 1's rekey timer fires: one more.
        clock.Advance(TimeSpan.FromSeconds(10));
        engine.Tick();
        engine.Tick();
        Assert.Equal(2, engine.TimerNodesVisited);
        Assert.True(engine.GetNode(new Ipv6Address((UInt128)0x2001_0db8_0002_0000UL << 64 | 2))!.RekeyPending);
        Assert.Equal(Start + TimeSpan.FromHours(1), engine.NextDeadline);
    }
}
