using MipKeyAgent.Simulation;
using MipKeyAgent.Wire;
using MipKeyAgent.TestSupport;

namespace MipKeyAgent.Transport.Tests.Simulation;

public sealed class SimulatedLinkTests
{
    private static readonly DateTimeOffset Start = TestTime.Start;

    private static readonly LinkFaults Faulty = new()
    {
        Loss = 0.2,
        Duplication = 0.1,
        Reorder = 0.3,
        ReorderDelay = TimeSpan.FromMilliseconds(300),
        Delay = TimeSpan.FromMilliseconds(20),
        Jitter = TimeSpan.FromMilliseconds(5),
    };

    /// <summary>Sends 1000 small datagrams 10 ms apart; returns (tag, arrival) in delivery order.</summary>
    private static List<(long Tag, DateTimeOffset ArrivesAt, bool Duplicate)> Run(int seed, LinkProfile profile, out SimulatedLink link)
    {
        link = new SimulatedLink(seed, profile);
        var delivered = new List<(long, DateTimeOffset, bool)>();
        var now = Start;
        for (int i = 1; i <= 1000; i++)
        {
            link.Send(now, LinkDirection.ToHomeAgent, new byte[] { (byte)i }, tag: i);
            now += TimeSpan.FromMilliseconds(10);
            while (link.TryReceive(now, out var d))
            {
                delivered.Add((d.Tag, d.ArrivesAt, d.IsDuplicate));
            }
        }
        while (link.NextArrival is { } at)
        {
            link.TryReceive(at, out var d);
            delivered.Add((d.Tag, d.ArrivesAt, d.IsDuplicate));
        }
        return delivered;
    }

    private static LinkProfile Both(LinkFaults faults) => new(faults, faults);

    [Fact]
    public void SameSeed_SameSends_IdenticalLossDuplicationAndOrder()
    {
        var first = Run(42, Both(Faulty), out _);
        var second = Run(42, Both(Faulty), out _);

        Assert.Equal(first, second);
    }

    [Fact]
    public void DifferentSeed_SameSends_DifferentFates()
    {
        var first = Run(42, Both(Faulty), out _);
        var second = Run(43, Both(Faulty), out _);

        Assert.NotEqual(first.Select(d => d.Tag), second.Select(d => d.Tag));
    }

    [Fact]
    public void FaultyLink_CountsMatchDeliveriesAndRatesAreNearConfigured()
    {
        var delivered = Run(7, Both(Faulty), out var link);

        Assert.Equal(1000, link.Counters.Sent);
        Assert.Equal(1000 - link.Counters.Lost + link.Counters.Duplicated, delivered.Count);
        Assert.Equal(link.Counters.Delivered, delivered.Count);
        Assert.InRange(link.Counters.Lost, 150, 250);
        Assert.InRange(link.Counters.Duplicated, 50, 120);
        Assert.Equal(link.Counters.Duplicated, delivered.Count(d => d.Duplicate));
        // Every copy arrives no earlier than the base delay and no later than the longest delay.
        Assert.All(delivered, d => Assert.InRange(d.ArrivesAt - Start, TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(10 * 1000 + 325)));
    }

    [Fact]
    public void Reordering_LaterDatagramsOvertakeDelayedOnes()
    {
        var delivered = Run(7, Both(Faulty with { Loss = 0, Duplication = 0 }), out var link);

        var tags = delivered.Select(d => d.Tag).ToList();
        Assert.Equal(Enumerable.Range(1, 1000).Select(i => (long)i), tags.Order());
        Assert.NotEqual(tags.Order(), tags);
        Assert.True(link.Counters.Reordered > 200);
        // Arrival order is non-decreasing in time: the queue hands out the earliest first.
        Assert.All(delivered.Zip(delivered.Skip(1)), pair => Assert.True(pair.First.ArrivesAt <= pair.Second.ArrivesAt));
    }

    [Fact]
    public void PerfectLink_DeliversEverythingInOrderAfterTheDelay()
    {
        var delivered = Run(7, LinkProfile.Perfect(TimeSpan.FromMilliseconds(15)), out var link);

        Assert.Equal(Enumerable.Range(1, 1000).Select(i => (long)i), delivered.Select(d => d.Tag));
        Assert.All(delivered, d => Assert.Equal(TimeSpan.FromMilliseconds(15 + 10 * (d.Tag - 1)), d.ArrivesAt - Start));
        Assert.Equal(0, link.Counters.Lost);
    }

    [Fact]
    public void DropBindingAcknowledgements_DropsOnlyHomeAgentToNodeControl()
    {
        var link = new SimulatedLink(1, LinkProfile.Perfect() with { DropBindingAcknowledgements = true });
        var control = EspDatagram(spi: 0x0000_1234);
        var data = EspDatagram(spi: 0x8000_1234);

        Assert.Equal(0, link.Send(Start, LinkDirection.ToMobileNode, control));
        Assert.Equal(1, link.Send(Start, LinkDirection.ToMobileNode, data));
        Assert.Equal(1, link.Send(Start, LinkDirection.ToHomeAgent, control));

        Assert.Equal(1, link.Counters.BindingAcknowledgementsDropped);
        Assert.Equal(2, link.InFlight);
    }

    [Fact]
    public void IsControl_ClassifiesBySpiRange()
    {
        Assert.True(SimulatedLink.IsControl(EspDatagram(spi: 256)));
        Assert.True(SimulatedLink.IsControl(EspDatagram(spi: 0x7FFF_FFFF)));
        Assert.False(SimulatedLink.IsControl(EspDatagram(spi: 0x8000_0100)));
        Assert.False(SimulatedLink.IsControl(new byte[] { 0x60 }));
    }

    [Fact]
    public void TryReceive_BeforeArrival_ReturnsNothing()
    {
        var link = new SimulatedLink(1, LinkProfile.Perfect(TimeSpan.FromMilliseconds(10)));
        link.Send(Start, LinkDirection.ToHomeAgent, new byte[] { 1 });

        Assert.False(link.TryReceive(Start.AddMilliseconds(9), out _));
        Assert.Equal(Start.AddMilliseconds(10), link.NextArrival);
        Assert.True(link.TryReceive(Start.AddMilliseconds(10), out var d));
        Assert.Equal(Start, d.SentAt);
    }

    /// <summary>IPv6 header (next header ESP) + an ESP header with <paramref name="spi"/>, sequence 1, 16 octets of body.</summary>
    private static byte[] EspDatagram(uint spi)
    {
        var bytes = new byte[Ipv6Header.Length + 8 + 16];
        new Ipv6Header(0, 0, 24, IpProtocol.Esp, 64, Ipv6Address.Parse("2001:db8::1"), Ipv6Address.Parse("2001:db8::2")).WriteTo(bytes);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(Ipv6Header.Length), spi);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(Ipv6Header.Length + 4), 1);
        return bytes;
    }
}
