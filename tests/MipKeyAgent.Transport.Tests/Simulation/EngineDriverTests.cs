using MipKeyAgent.Simulation;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Transport.Tests.Simulation;

public sealed class EngineDriverTests
{
    private static readonly Ipv6Address HomeAgent = Ipv6Address.Parse("2001:db8:1::1");
    private static readonly Ipv6Address CareOf = Ipv6Address.Parse("2001:db8:100::1");
    private static readonly Ipv6Address Nobody = Ipv6Address.Parse("2001:db8:ff::1");

    /// <summary>An IPv6 datagram to <paramref name="destination"/> whose first payload octet is <paramref name="mark"/>.</summary>
    private static byte[] Datagram(Ipv6Address destination, byte mark)
    {
        var packet = new byte[Ipv6Header.Length + 1];
        new Ipv6Header(0, 0, 1, IpProtocol.NoNextHeader, 64, CareOf, destination).WriteTo(packet);
        packet[^1] = mark;
        return packet;
    }

    [Fact]
    public void Pump_PerfectLink_DeliversInSendOrderIncludingAnswersSentDuringDelivery()
    {
        var driver = new EngineDriver();
        var seen = new List<string>();
        driver.Attach(HomeAgent, LinkDirection.ToHomeAgent, (byte[] d) =>
        {
            seen.Add($"ha{d[^1]}");
            driver.Send(Datagram(CareOf, (byte)(d[^1] + 10)));
        });
        driver.Attach(CareOf, LinkDirection.ToMobileNode, (byte[] d) => seen.Add($"mn{d[^1]}"));

        driver.Send(Datagram(HomeAgent, 1));
        driver.Send(Datagram(HomeAgent, 2));
        int delivered = driver.Pump();

        Assert.Equal(["ha1", "ha2", "mn11", "mn12"], seen);
        Assert.Equal(4, delivered);
        Assert.Equal(0, driver.Pending);
        Assert.Equal(EngineDriver.DefaultStart, driver.Now);
    }

    [Fact]
    public void RunUntil_DelayedLink_DeliversAtArrivalTimeAndEndsAtUntil()
    {
        var link = new SimulatedLink(1, LinkProfile.Perfect(TimeSpan.FromMilliseconds(30)));
        var driver = new EngineDriver(link: link);
        var arrivals = new List<DateTimeOffset>();
        driver.Attach(HomeAgent, LinkDirection.ToHomeAgent, (byte[] _) => arrivals.Add(driver.Now));

        driver.Send(Datagram(HomeAgent, 1));
        Assert.Equal(0, driver.Pump());
        driver.RunUntil(EngineDriver.DefaultStart.AddSeconds(1));

        Assert.Equal([EngineDriver.DefaultStart.AddMilliseconds(30)], arrivals);
        Assert.Equal(EngineDriver.DefaultStart.AddSeconds(1), driver.Now);
    }

    [Fact]
    public void Send_LossyAndDuplicatingLink_LosesOrDoublesEachDatagram()
    {
        var lossy = new EngineDriver(link: new SimulatedLink(1, new LinkProfile(new LinkFaults { Loss = 1 }, new LinkFaults { Loss = 1 })));
        var doubling = new EngineDriver(link: new SimulatedLink(1, new LinkProfile(new LinkFaults { Duplication = 1 }, new LinkFaults { Duplication = 1 })));
        int lost = 0, doubled = 0;
        lossy.Attach(HomeAgent, LinkDirection.ToHomeAgent, (byte[] _) => lost++);
        doubling.Attach(HomeAgent, LinkDirection.ToHomeAgent, (byte[] _) => doubled++);

        for (byte i = 0; i < 5; i++)
        {
            lossy.Send(Datagram(HomeAgent, i));
            doubling.Send(Datagram(HomeAgent, i));
        }
        lossy.Run(TimeSpan.FromSeconds(1));
        doubling.Run(TimeSpan.FromSeconds(1));

        Assert.Equal(0, lost);
        Assert.Equal(5, lossy.Link.Counters.Lost);
        Assert.Equal(10, doubled);
        Assert.Equal(5, doubling.Link.Counters.Duplicated);
    }

    [Fact]
    public void Pump_DropNextAndUnknownDestination_CountedNotDelivered()
    {
        var driver = new EngineDriver();
        var seen = new List<byte>();
        driver.Attach(HomeAgent, LinkDirection.ToHomeAgent, (byte[] d) => seen.Add(d[^1]));
        driver.DropNext(HomeAgent);

        driver.Send(Datagram(HomeAgent, 1));
        driver.Send(Datagram(HomeAgent, 2));
        driver.Send(Datagram(Nobody, 3));
        driver.Pump();

        Assert.Equal([2], seen);
        Assert.Equal(1, driver.Dropped);
        Assert.Equal(1, driver.Unroutable);
        Assert.Equal(3, driver.Sent.Count);
    }

    [Fact]
    public void RunUntil_TwoTimers_EachTickedAtItsDeadlineInOrder()
    {
        var driver = new EngineDriver();
        var start = driver.Now;
        DateTimeOffset? first = start.AddSeconds(2), second = start.AddSeconds(5);
        var ticks = new List<(string, TimeSpan)>();
        driver.AddTimer(() => first, () =>
        {
            if (first <= driver.Now)
            {
                ticks.Add(("first", driver.Now - start));
                first = driver.Now.AddSeconds(4);
            }
        });
        driver.AddTimer(() => second, () =>
        {
            if (second <= driver.Now)
            {
                ticks.Add(("second", driver.Now - start));
                second = null;
            }
        });

        driver.Run(TimeSpan.FromSeconds(7));

        Assert.Equal([("first", TimeSpan.FromSeconds(2)), ("second", TimeSpan.FromSeconds(5)), ("first", TimeSpan.FromSeconds(6))], ticks);
        Assert.Equal(start.AddSeconds(7), driver.Now);
    }

    [Fact]
    public void PeekNext_ArrivalAndDeadlineAtOnce_ArrivalFirstThenTimersInOrder()
    {
        var driver = new EngineDriver();
        var now = driver.Now;
        driver.Attach(HomeAgent, LinkDirection.ToHomeAgent, (byte[] _) => { });
        driver.AddTimer(() => null, () => { });
        driver.AddTimer(() => now, () => { });
        driver.AddTimer(() => now, () => { });
        driver.Send(Datagram(HomeAgent, 1));

        Assert.Equal(new DriverEvent(now, DriverEventKind.Arrival, -1), driver.PeekNext());
        Assert.NotNull(driver.Step(driver.PeekNext()!.Value));
        Assert.Equal(new DriverEvent(now, DriverEventKind.Timer, 1), driver.PeekNext());
    }

    [Fact]
    public void AdvanceTo_EarlierInstant_ThrowsAndKeepsTime()
    {
        var driver = new EngineDriver();
        var start = driver.Now;
        driver.AdvanceTo(start.AddSeconds(2));
        driver.AdvanceTo(start.AddSeconds(2));

        Assert.Throws<ArgumentOutOfRangeException>(() => driver.AdvanceTo(start.AddSeconds(1)));

        Assert.Equal(start.AddSeconds(2), driver.Now);
    }

    [Fact]
    public void RunUntil_DeadlineThatNeverMovesOn_FailsLoudlyInsteadOfSpinning()
    {
        var driver = new EngineDriver();
        var stuck = driver.Now.AddSeconds(1);
        driver.AddTimer(() => stuck, () => { });

        var error = Assert.Throws<InvalidOperationException>(() => driver.Run(TimeSpan.FromSeconds(5)));

        Assert.Contains("no progress", error.Message, StringComparison.Ordinal);
    }
}
