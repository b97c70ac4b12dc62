using System.Buffers.Binary;
using MipKeyAgent.Transport.Internal;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Transport.Tests;

/// <summary>
/// The pieces that keep the data path from losing packets silently: the kernel filters of the packet
/// sockets (run here through an interpreter of the few classic BPF instructions they use; the lab tests
/// attach them to real sockets), the coalesced loop wake-up, and the device pump's back-pressure.
/// </summary>
public sealed class PacketPathTests
{
    private const int EthernetLength = 14;
    private static readonly Ipv6Address HomeAgent = Ipv6Address.Parse("2001:db8:1::1");
    private static readonly Ipv6Address HomeAddress = Ipv6Address.Parse("2001:db8:1::100");
    private static readonly Ipv6Address Other = Ipv6Address.Parse("2001:db8:1::1:1");

    [Fact]
    public void KeepDestinations_KeepsEachListedDestinationAndDropsEveryOther()
    {
        Ipv6Address[] addresses = [HomeAgent, HomeAddress, Ipv6Address.Parse("2001:db8:ff::2")];
        var program = PacketSocketKernel.KeepDestinations(0, addresses)!;
        foreach (var address in addresses)
        {
            Assert.NotEqual(0u, PacketSocketKernel.Run(program, Datagram(address, IpProtocol.Esp)));
        }

        Assert.Equal(0u, PacketSocketKernel.Run(program, Datagram(Other, IpProtocol.Esp)));
        // Differing only in the last word, or only in the first.
        Assert.Equal(0u, PacketSocketKernel.Run(program, Datagram(Ipv6Address.Parse("2001:db8:1::2"), IpProtocol.Esp)));
        Assert.Equal(0u, PacketSocketKernel.Run(program, Datagram(Ipv6Address.Parse("2001:db9:1::1"), IpProtocol.Esp)));
        // Too short to hold a destination: dropped, as the kernel drops a load past the end.
        Assert.Equal(0u, PacketSocketKernel.Run(program, Datagram(HomeAgent, IpProtocol.Esp).AsSpan(0, 30)));
    }

    [Fact]
    public void KeepDestinations_AtTheLimitStillReachesTheLastAddress_PastItNoFilter()
    {
        var many = Enumerable.Range(1, PacketSocketKernel.MaxFilterAddresses).Select(i => Ipv6Address.Parse($"2001:db8:7::{i:x}")).ToArray();
        var program = PacketSocketKernel.KeepDestinations(EthernetLength, many)!;
        Assert.NotEqual(0u, PacketSocketKernel.Run(program, Frame(many[^1], IpProtocol.Esp)));
        Assert.NotEqual(0u, PacketSocketKernel.Run(program, Frame(many[0], IpProtocol.Esp)));
        Assert.Equal(0u, PacketSocketKernel.Run(program, Frame(Other, IpProtocol.Esp)));

        Assert.Null(PacketSocketKernel.KeepDestinations(0, [.. many, Other]));
        Assert.Null(PacketSocketKernel.KeepDestinations(0, []));
    }

    [Fact]
    public void DropToAddressUnlessIcmpv6_DropsOnlyTheHomeAgentsOwnNonIcmpTraffic()
    {
        var program = PacketSocketKernel.DropToAddressUnlessIcmpv6(EthernetLength, HomeAgent);
        // The agent's own ESP and Mobility Header traffic: the kernel and the agent's transport take it.
        Assert.Equal(0u, PacketSocketKernel.Run(program, Frame(HomeAgent, IpProtocol.Esp)));
        Assert.Equal(0u, PacketSocketKernel.Run(program, Frame(HomeAgent, IpProtocol.DestinationOptions)));
        // Neighbor Discovery to it (unicast unreachability probes) and everything to other addresses: kept.
        Assert.NotEqual(0u, PacketSocketKernel.Run(program, Frame(HomeAgent, IpProtocol.Icmpv6)));
        Assert.NotEqual(0u, PacketSocketKernel.Run(program, Frame(HomeAddress, IpProtocol.Esp)));
        Assert.NotEqual(0u, PacketSocketKernel.Run(program, Frame(Ipv6Address.Parse("2001:db8:1::0:1:1"), IpProtocol.Tcp)));
    }

    [Fact]
    public void Wakeup_SignalsBeforeTheReceiverWakes_WriteTheEventfdOnce_AndSignalAgainAfterClear()
    {
        using var wakeup = new TransportWakeup();
        Assert.False(Readable(wakeup));
        wakeup.Signal();
        wakeup.Signal();
        wakeup.Signal();
        Assert.True(Readable(wakeup));
        var value = new byte[8];
        Assert.Equal(8, (int)LibC.read(wakeup.Handle, value, 8));
        Assert.Equal(1UL, BitConverter.ToUInt64(value));

        // As the receiver does: the read (above, in Clear) and the reset. Then a signal is written again.
        wakeup.Signal();
        wakeup.Clear();
        Assert.False(Readable(wakeup));
        wakeup.Signal();
        Assert.True(Readable(wakeup));
        wakeup.Clear();
        Assert.False(Readable(wakeup));
    }

    [Fact]
    public async Task Pump_WaitingWhenFull_HoldsTheDeviceBackAndLosesNothing()
    {
        var device = new FakeFrameDevice();
        await using var pump = new DevicePump(device, queueLength: 4, waitWhenFull: true);
        pump.Start(pump.Enqueue, 2048);
        for (int i = 0; i < 50; i++)
        {
            device.Inject([(byte)i, 0x60]);
        }

        var received = new List<byte[]>();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (received.Count < 50)
        {
            await pump.ReceiveManyAsync(received, 8, timeout.Token);
        }

        Assert.Equal(Enumerable.Range(0, 50).Select(i => (byte)i), received.Select(r => r[0]));
        Assert.Equal(0, pump.DroppedQueueFull);
    }

    [Fact]
    public async Task Pump_NotWaiting_CountsWhatTheFullQueueCouldNotTake()
    {
        var device = new FakeFrameDevice();
        await using var pump = new DevicePump(device, queueLength: 4);
        int handled = 0;
        pump.Start(frame =>
        {
            pump.Enqueue(frame);
            Interlocked.Increment(ref handled);
        }, 2048);
        for (int i = 0; i < 50; i++)
        {
            device.Inject([(byte)i, 0x60]);
        }

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (Volatile.Read(ref handled) < 50 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }

        Assert.Equal(46, pump.DroppedQueueFull);
        var received = new List<byte[]>();
        Assert.Equal(4, await pump.ReceiveManyAsync(received, 64, CancellationToken.None));
        Assert.Equal(new byte[] { 0, 1, 2, 3 }, received.Select(r => r[0]));
    }

    private static bool Readable(TransportWakeup wakeup)
    {
        var poll = new[] { new LibC.PollFd { Fd = wakeup.Descriptor, Events = LibC.POLLIN } };
        return LibC.poll(poll, 1, 0) == 1;
    }

    private static byte[] Datagram(Ipv6Address destination, byte nextHeader)
    {
        var datagram = new byte[Ipv6Header.Length + 8];
        datagram[0] = 0x60;
        BinaryPrimitives.WriteUInt16BigEndian(datagram.AsSpan(4), 8);
        datagram[6] = nextHeader;
        datagram[7] = 64;
        Other.WriteTo(datagram.AsSpan(8));
        destination.WriteTo(datagram.AsSpan(24));
        return datagram;
    }

    private static byte[] Frame(Ipv6Address destination, byte nextHeader)
    {
        var frame = new byte[EthernetLength];
        frame[12] = 0x86;
        frame[13] = 0xDD;
        return [.. frame, .. Datagram(destination, nextHeader)];
    }
}
