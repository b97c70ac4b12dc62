using System.Net;
using System.Net.Sockets;
using MipKeyAgent.Transport;
using MipKeyAgent.Transport.Internal;
using MipKeyAgent.Transport.Tests;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Lab.Tests;

/// <summary>
/// What the kernel does below our sockets and devices, on real ones: the packet socket filter drops
/// frames for other destinations before they take buffer room, a full receive buffer's drops are
/// counted, and a tun's queue (txqueuelen) is ours to size and its overflow is counted.
/// <code>
///  ns s: 2001:db8:fc::1 ==veth== 2001:db8:fc::2 RawSocketTransport(s) :ns r
///  ns r: tun (2001:db8:fd::1), nobody reading it
/// </code>
/// Needs root.
/// </summary>
[Collection(LabCollection.Name)]
public sealed class KernelDropLabTests : IAsyncLifetime
{
    private static readonly Ipv6Address SenderAddress = Ipv6Address.Parse("2001:db8:fc::1");
    private static readonly Ipv6Address ReceiverAddress = Ipv6Address.Parse("2001:db8:fc::2");
    private static readonly Ipv6Address Elsewhere = Ipv6Address.Parse("2001:db8:fc::99");
    private static readonly Ipv6Address HomeAddress = Ipv6Address.Parse("2001:db8:f3::100");
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    private readonly LabScratch _scratch = new("mkd");
    private string _s = "";
    private string _r = "";
    private string _receiverLink = "";
    private RawSocketTransport _sender = null!;

    public async Task InitializeAsync()
    {
        await _scratch.InitializeAsync();
        _s = _scratch.Namespace("s");
        _r = _scratch.Namespace("r");
        var sLink = _scratch.Name("vs");
        _receiverLink = _scratch.Name("vr");
        Shell.Run("ip", "-n", _s, "link", "add", sLink, "type", "veth", "peer", "name", _receiverLink, "netns", _r);
        Shell.Run("ip", "-n", _s, "addr", "add", $"{SenderAddress}/64", "dev", sLink, "nodad");
        Shell.Run("ip", "-n", _r, "addr", "add", $"{ReceiverAddress}/64", "dev", _receiverLink, "nodad");
        Shell.Run("ip", "-n", _s, "link", "set", sLink, "up");
        Shell.Run("ip", "-n", _r, "link", "set", _receiverLink, "up");
        // Frames to an address nobody on the link holds still go to the receiver's MAC.
        var mac = NetworkNamespace.Run(_r, () => Convert.ToHexString(InterfaceControl.GetMacAddress(_receiverLink)));
        var lladdr = string.Join(':', Enumerable.Range(0, 6).Select(i => mac.Substring(i * 2, 2)));
        Shell.Run("ip", "-n", _s, "neigh", "replace", Elsewhere.ToString(), "lladdr", lladdr, "dev", sLink, "nud", "permanent");
        Shell.Run("ip", "-n", _s, "neigh", "replace", ReceiverAddress.ToString(), "lladdr", lladdr, "dev", sLink, "nud", "permanent");
        _sender = NetworkNamespace.Run(_s, () => RawSocketTransport.Open(new RawSocketTransportOptions { InterfaceName = sLink, LocalAddresses = [SenderAddress] }));
    }

    public async Task DisposeAsync()
    {
        if (_sender is not null)
        {
            await _sender.DisposeAsync();
        }
        await _scratch.DisposeAsync();
    }

    [Fact]
    public async Task RawTransport_FramesToOtherDestinations_AreDroppedInTheKernelNotPassedOverByUs()
    {
        await using var receiver = NetworkNamespace.Run(_r, () =>
            RawSocketTransport.Open(new RawSocketTransportOptions { InterfaceName = _receiverLink, LocalAddresses = [ReceiverAddress] }));
        var batch = RawSocketTransport.CreateReceiveBatch();
        for (uint i = 1; i <= 50; i++)
        {
            _sender.Send(TestDatagrams.HomeAddressEsp(SenderAddress, Elsewhere, HomeAddress, spi: 0x6000, sequence: i));
        }
        _sender.Send(TestDatagrams.HomeAddressEsp(SenderAddress, ReceiverAddress, HomeAddress, spi: 0x6001, sequence: 1));

        var deadline = DateTime.UtcNow + Deadline;
        int received = 0;
        while (received == 0 && DateTime.UtcNow < deadline)
        {
            received = receiver.ReceiveBatch(batch, 200);
        }

        // The one for us arrived after the fifty; none of those reached user space to be passed over (the kernel's
        // own Neighbor Discovery to our address may be: that filter is ours, after the kernel's).
        Assert.Equal(1, received);
        Assert.InRange(receiver.Filtered, 0, 5);
        Assert.Equal(0, receiver.KernelDropped);
    }

    [Fact]
    public async Task RawTransport_ReceiveBufferOverflowing_KernelDropsAreCounted()
    {
        await using var receiver = NetworkNamespace.Run(_r, () => RawSocketTransport.Open(new RawSocketTransportOptions
        {
            InterfaceName = _receiverLink,
            LocalAddresses = [ReceiverAddress],
            ReceiveBufferBytes = 4096,
        }));
        // Nobody reads: the smallest buffer holds a few frames, the kernel drops the rest.
        for (uint i = 1; i <= 300; i++)
        {
            _sender.Send(TestDatagrams.HomeAddressEsp(SenderAddress, ReceiverAddress, HomeAddress, spi: 0x7000, sequence: i, payloadLength: 200));
        }

        var deadline = DateTime.UtcNow + Deadline;
        while (receiver.KernelDropped < 250 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }
        Assert.InRange(receiver.KernelDropped, 250, 300);
    }

    [Fact]
    public void Tun_QueueSizedByUs_AndItsOverflowCounted()
    {
        var tunName = _scratch.Name("tun");
        var tunAddress = Ipv6Address.Parse("2001:db8:fd::1");
        var (queue, dropped) = NetworkNamespace.Run(_r, () =>
        {
            using var device = TunTapDevice.OpenTun(tunName);
            InterfaceControl.SetTransmitQueueLength(tunName, 16);
            InterfaceControl.SetUp(tunName);
            InterfaceControl.AddAddress(tunName, tunAddress, 64);
            using var counters = InterfaceCounters.Open(tunName)!;
            Assert.Equal(0, counters.TransmitDropped());
            var queueLine = Shell.Run("ip", "-n", _r, "link", "show", tunName);
            // Nobody reads the tun: sixteen datagrams fit its queue, the kernel drops the rest.
            using var socket = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp);
            var target = new IPEndPoint(IPAddress.Parse("2001:db8:fd::2"), 9);
            for (int i = 0; i < 200; i++)
            {
                socket.SendTo(new byte[100], target);
            }
            return (queueLine, counters.TransmitDropped());
        });

        Assert.Contains("qlen 16", queue);
        Assert.InRange(dropped, 200 - 16, 200 + 16);
    }
}
